package store

import (
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// maxGroup bounds how many Creates share one transaction, so a burst does not
// build one huge commit.
const maxGroup = 256

// createReq is one Create waiting for its commit.
type createReq struct {
	ticket   triage.Ticket
	customer triage.Customer
	now      time.Time

	stored triage.Ticket
	dup    bool
	err    error
	done   chan struct{}
}

// groupCommitter lets concurrent Creates share a commit. bbolt fsyncs every
// commit, and that fsync, not the work in the transaction, bounds intake.
// Unlike bolt.DB.Batch it adds no delay: a Create arriving while nothing is
// being committed starts a commit at once, and Creates arriving during that
// commit are written together in the next one.
type groupCommitter struct {
	mu      sync.Mutex
	queue   []*createReq
	running bool
}

// create queues req and waits until it is committed or has failed. It does
// not give up on a cancelled context: once queued, the ticket may be stored,
// and the caller must learn whether it was.
func (db *DB) create(req *createReq) {
	req.done = make(chan struct{})
	g := &db.group
	g.mu.Lock()
	g.queue = append(g.queue, req)
	if !g.running {
		g.running = true
		go db.commitLoop()
	}
	g.mu.Unlock()
	<-req.done
}

// commitLoop commits queued Creates, a group at a time, until the queue is
// empty.
func (db *DB) commitLoop() {
	g := &db.group
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		reqs := g.queue[:n]
		// A fresh slice, so finished requests are not kept alive by the
		// queue's backing array.
		g.queue = slices.Clone(g.queue[n:])
		g.mu.Unlock()
		db.commitGroup(reqs)
	}
}

// commitGroup writes reqs in one transaction. A request whose own writes
// fail is taken out and answered with its error, and the transaction is
// retried without it, so one bad inbound message cannot fail its neighbours.
// createTx depends only on the transaction's state, so re-running it is safe.
func (db *DB) commitGroup(group []*createReq) {
	reqs := slices.Clone(group)
	for len(reqs) > 0 {
		failed := -1
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := bucketsOf(tx)
			for i, r := range reqs {
				r.stored, r.dup, r.err = createTx(b, r.ticket, r.customer, r.now)
				if r.err != nil {
					failed = i
					return r.err
				}
			}
			return nil
		})
		if failed >= 0 {
			close(reqs[failed].done)
			reqs = slices.Delete(reqs, failed, failed+1)
			continue
		}
		for _, r := range reqs {
			if err != nil {
				r.stored, r.dup, r.err = triage.Ticket{}, false, err
			}
			close(r.done)
		}
		return
	}
}
