package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// Environment of the crash test's child process.
const (
	crashChildEnv   = "CASEBOT_CRASH_CHILD_DB"
	crashSlackEnv   = "CASEBOT_CRASH_CHILD_SLACK"
	crashAddrPrefix = "CASEBOT-ADDR "
)

// crashSystem opens the System the crash test's child runs, and the parent
// restarts at the end: keyword classifier, a webhook secret, and a poster
// paced for a stand-in without rate limits. Drafting is off: each draft
// is one more card update through the one channel's serial poster, which
// would double the test's time without exercising anything else here.
func crashSystem(dbPath, slackURL, httpAddr string) (*System, error) {
	s := &System{Config: DefaultConfig(), DBPath: dbPath, SlackAPIURL: slackURL, HTTPAddr: httpAddr,
		Classifier: classifierKeyword,
		Secrets: Secrets{SlackBotToken: slackfake.DefaultBotToken, SlackAppToken: slackfake.DefaultAppToken,
			WebhookSecret: testWebhookSecret},
		Poster: bot.PosterOptions{PerChannelInterval: time.Millisecond, PollInterval: 20 * time.Millisecond,
			Backoff: 5 * time.Millisecond}}
	if err := s.Open(context.Background()); err != nil {
		return nil, err
	}
	s.Triager.Drafter = nil
	return s, nil
}

// TestCrashChild is not a test: it is the bot that TestCrashIntake runs in
// a child process (the test binary re-executed) and kills.
func TestCrashChild(t *testing.T) {
	dbPath := os.Getenv(crashChildEnv)
	if dbPath == "" {
		t.Skip("helper process of TestCrashIntake")
	}
	s, err := crashSystem(dbPath, os.Getenv(crashSlackEnv), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", crashAddrPrefix, s.Addr())
	// Runs until the parent kills the process.
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// crashChild is one run of the child process.
type crashChild struct {
	cmd  *exec.Cmd
	addr string
}

// startCrashChild starts the bot in a child process and waits for its HTTP
// address. Its stderr goes to stderr, kept for the race detector's reports.
func startCrashChild(t *testing.T, dbPath, slackURL string, stderr io.Writer) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dbPath, crashSlackEnv+"="+slackURL, EnvOllamaHost+"=")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), crashAddrPrefix); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			cmd.Wait()
			t.Fatalf("the child exited before listening: %v", cmd.ProcessState)
		}
		return &crashChild{cmd: cmd, addr: a}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child did not start listening within 30s")
	}
	return nil
}

// kill crashes the child with SIGKILL: no deferred function, no shutdown.
func (c *crashChild) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// TestCrashIntake checks SPEC invariants 1, 2 and 6 across crashes: a child
// process ingests webhook tickets from concurrent senders and is killed
// with SIGKILL at random moments and restarted; senders retry whatever got
// no 2xx. Every acknowledged ticket is then stored exactly once, and after a
// clean start every stored ticket is posted, exactly once.
func TestCrashIntake(t *testing.T) {
	if testing.Short() {
		t.Skip("crashes a child process repeatedly; not with -short")
	}
	const (
		tickets = 2000
		senders = 8
		kills   = 8
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	fake := slackfake.New(slackfake.Options{PostRate: -1})
	defer fake.Close()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "casebot.db")
	stderr, err := os.Create(filepath.Join(dir, "child.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()

	began := time.Now()
	child := startCrashChild(t, dbPath, fake.APIURL(), stderr)
	var addr atomic.Pointer[string]
	addr.Store(&child.addr)

	// acked maps each external ID to the ticket ID of its first 2xx.
	var (
		mu    sync.Mutex
		acked = map[string]string{}
	)
	work := make(chan int, tickets)
	for i := range tickets {
		work <- i
	}
	close(work)
	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	defer client.CloseIdleConnections()
	var sent sync.WaitGroup
	for range senders {
		sent.Go(func() {
			for i := range work {
				ext := fmt.Sprintf("crash-%04d", i)
				email := fmt.Sprintf("customer%03d@example.com", i%500)
				for {
					code, id, err := sendTicket(client, "http://"+*addr.Load(), testWebhookSecret, ext, email,
						fmt.Sprintf("Where is my parcel for order %d?", 1000+i))
					if err == nil && code/100 == 2 {
						mu.Lock()
						if prev, ok := acked[ext]; ok && prev != id {
							t.Errorf("%s acknowledged as %s and as %s", ext, prev, id)
						}
						acked[ext] = id
						mu.Unlock()
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	allSent := make(chan struct{})
	go func() { sent.Wait(); close(allSent) }()

	crashes := 0
	for range kills {
		select {
		case <-allSent:
		case <-time.After(time.Duration(rng.IntN(300)) * time.Millisecond):
			child.kill()
			crashes++
			child = startCrashChild(t, dbPath, fake.APIURL(), stderr)
			addr.Store(&child.addr)
			continue
		}
		break
	}
	select {
	case <-allSent:
	case <-time.After(60 * time.Second):
		child.kill()
		t.Fatalf("senders did not finish; %d of %d acknowledged", len(acked), tickets)
	}
	// A last crash, with cards and drafts still in flight.
	child.kill()
	t.Logf("%d crashes while sending, one after; sending took %s", crashes, time.Since(began).Round(time.Millisecond))
	if raced, _ := os.ReadFile(stderr.Name()); strings.Contains(string(raced), "DATA RACE") {
		t.Errorf("the child reported a data race:\n%s", raced)
	}
	if len(acked) != tickets {
		t.Fatalf("%d of %d tickets acknowledged", len(acked), tickets)
	}

	// What the crashes left: every ticket stored once, and each posted, or
	// with its card pending, or still received (classified at start).
	stored := crashStored(t, dbPath, acked)
	channels := map[string]bool{}
	for _, tk := range stored {
		channels[tk.Route.Channel] = true
	}

	// A clean start finishes the work, and every card is in Slack once.
	s, err := crashSystem(dbPath, fake.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitCtx, waitDone := context.WithTimeout(context.Background(), 60*time.Second)
	defer waitDone()
	unposted := -1
	for unposted != 0 && waitCtx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		// Reading every ticket is costly: only once the outbox is empty.
		if chans, err := s.DB.Channels(ctx); err != nil || len(chans) > 0 {
			continue
		}
		unposted = 0
		err := s.DB.Window(ctx, time.Time{}, time.Now().Add(time.Hour), func(tk triage.Ticket) error {
			if tk.Slack.TS == "" {
				unposted++
			}
			channels[tk.Route.Channel] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	s.Close()
	t.Logf("the clean start posted the rest in %s", time.Since(restarted).Round(time.Millisecond))
	if unposted != 0 {
		t.Fatalf("%d tickets still without a card after a clean start", unposted)
	}
	e := &e2e{t: t, fake: fake}
	cards := 0
	for ch := range channels {
		for id, ms := range e.cards(ch) {
			cards++
			if len(ms) != 1 {
				t.Errorf("ticket %s has %d cards in %s, want 1", id, len(ms), ch)
			}
		}
	}
	if cards != len(stored) {
		t.Errorf("%d tickets have cards, want %d", cards, len(stored))
	}
}

// crashStored checks the store a crash left: each acknowledged external ID
// stored exactly once, as the ticket its acknowledgement named, nothing
// else stored, and every ticket posted, with its card pending in the
// outbox, or still received. It returns the tickets by ID.
func crashStored(t *testing.T, dbPath string, acked map[string]string) map[string]triage.Ticket {
	t.Helper()
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	pendingCard := map[string]bool{}
	chans, err := db.Channels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		posts, err := db.Pending(ctx, ch, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range posts {
			if p.Kind == triage.PostCard {
				pendingCard[p.TicketID] = true
			}
		}
	}
	byID := map[string]triage.Ticket{}
	byExternal := map[string]int{}
	var posted, pending, received int
	err = db.Window(ctx, time.Time{}, time.Now().Add(time.Hour), func(tk triage.Ticket) error {
		byID[tk.ID] = tk
		byExternal[string(tk.Source)+"/"+tk.ExternalID]++
		if id, ok := acked[tk.ExternalID]; !ok || id != tk.ID {
			t.Errorf("stored ticket %s (%s) was acknowledged as %q", tk.ID, tk.ExternalID, id)
		}
		switch {
		case tk.Slack.TS != "":
			posted++
		case pendingCard[tk.ID]:
			pending++
		case tk.State == triage.StateReceived:
			received++
		default:
			t.Errorf("ticket %s is %s with no card posted or pending", tk.ID, tk.State)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for ext := range acked {
		if n := byExternal[string(triage.SourceWebhook)+"/"+ext]; n != 1 {
			t.Errorf("acknowledged %s is stored %d times", ext, n)
		}
	}
	t.Logf("after the crashes: %d tickets; %d posted, %d with the card pending, %d still received",
		len(byID), posted, pending, received)
	return byID
}
