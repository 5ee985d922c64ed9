// Command casebot is the Slack chat-ops bot for ecommerce customer service,
// and its tools: demo, triage, eval, report and import. Run `casebot help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// usage is printed by `casebot help` and on a bad command line.
const usage = `casebot: customer service triage for Slack, with a local model.

Usage:
  casebot run    [--classifier keyword|ollama] [--db FILE]        the bot: Socket Mode, HTTP intake, drafting
  casebot demo   [--input FILE] [--transcript FILE] [--db FILE]   the whole loop with no accounts
  casebot triage [--json] [--classifier keyword|ollama]          classify text from stdin
  casebot eval FILE [--json] [--predictions OUT] [--classifier keyword|ollama]
  casebot report [--json] [--window 7d|30d|90d] [--at TIME] [--db FILE]   metrics (default 30d, casebot.db)
  casebot import FILE [--format jsonl|csv] [--classifier keyword|ollama] [--db FILE]   backfill history
  casebot backup FILE [--db FILE]                                 copy the store (stop the bot first)
  casebot erase --customer ID|--email ADDRESS [--yes] [--db FILE] erase one customer's data
  casebot help

Every command takes --config FILE (default casebot.yml; built-in defaults
when absent) and --db FILE (the bbolt file).
`

// errUsage marks a bad command line: exit status 2 and the usage text.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "casebot: %v\n\n%s", err, usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "casebot: %v\n", err)
		os.Exit(1)
	}
}

// run dispatches a command line; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "triage":
		return cmdTriage(ctx, rest, stdin, stdout, stderr)
	case "eval":
		return cmdEval(ctx, rest, stdout, stderr)
	case "report":
		return cmdReport(ctx, rest, stdout, stderr)
	case "import":
		return cmdImport(ctx, rest, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, rest, stdout, stderr)
	case "erase":
		return cmdErase(ctx, rest, stdin, stdout, stderr)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// commonFlags are the flags every command takes.
type commonFlags struct {
	config string
	db     string
}

func newFlagSet(name string, stderr io.Writer, c *commonFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.config, "config", "casebot.yml", "config `FILE`; built-in defaults when absent")
	fs.StringVar(&c.db, "db", "", "bbolt database `FILE`")
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (`casebot eval FILE --json`), and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// loadConfig reads the config named by --config; the default path may be
// absent, a path given explicitly must exist.
func loadConfig(fs *flag.FlagSet, c commonFlags) (Config, error) {
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	return LoadConfigFile(c.config, explicit)
}
