package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// benchBody is a realistic 500-byte customer message.
var benchBody = func() string {
	s := strings.Repeat("Hi, my order #10482 arrived with a cracked lid and the replacement I was promised last week never shipped. ", 5)
	return s[:500]
}()

func benchTicket(ext string, at time.Time) *triage.Ticket {
	return &triage.Ticket{
		Source:     triage.SourceWebhook,
		Channel:    "chat",
		ExternalID: ext,
		Subject:    "Damaged item, replacement missing",
		Body:       benchBody,
		OrderRef:   "#10482",
		ReplyTo:    "https://shop.example.com/hooks/reply",
		ReceivedAt: at,
	}
}

func benchCustomer(i int) triage.Customer {
	return triage.Customer{Email: fmt.Sprintf("customer%d@example.com", i%500), Name: "A Customer"}
}

func reportRate(b *testing.B, n int64) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tickets/s")
}

// BenchmarkCreateTicket stores one ticket per transaction, each committed
// (and fsynced) before the next, as a single intake goroutine would.
func BenchmarkCreateTicket(b *testing.B) {
	db, _ := openTest(b)
	ctx := context.Background()
	var n int64
	for b.Loop() {
		n++
		if _, err := db.Create(ctx, benchTicket(fmt.Sprint(n), t0.Add(time.Duration(n)*time.Second)), benchCustomer(int(n))); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, n)
}

// BenchmarkCreateTicketParallel stores tickets from 4×GOMAXPROCS goroutines
// at once, as concurrent sources (Slack events, webhook requests, IMAP) would;
// their Creates share commits.
func BenchmarkCreateTicketParallel(b *testing.B) {
	db, _ := openTest(b)
	b.SetParallelism(4)
	ctx := context.Background()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := db.Create(ctx, benchTicket(fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second)), benchCustomer(int(i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, n.Load())
}

// BenchmarkWindow30d reads the last 30 days of a store holding 10,000
// tickets received evenly over 90 days.
func BenchmarkWindow30d(b *testing.B) {
	db, _ := openTest(b)
	ctx := context.Background()
	const total, days = 10_000, 90
	step := days * 24 * time.Hour / total
	// Loaded through the same transaction body as Create, in one commit, so
	// setup does not cost 10,000 fsyncs.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		for i := range total {
			if _, _, err := createTx(b, *benchTicket(fmt.Sprint(i), t0.Add(time.Duration(i)*step)), benchCustomer(i), t0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	from, to := t0.AddDate(0, 0, days-30), t0.AddDate(0, 0, days)
	var visited int64
	for b.Loop() {
		err := db.Window(ctx, from, to, func(triage.Ticket) error {
			visited++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, visited)
}
