package slackfake

import (
	"math"
	"time"
)

// bucket is one channel's token bucket for chat.postMessage.
type bucket struct {
	tokens float64
	last   time.Time
}

// allowPost takes a token from channel's bucket at now, or reports how long
// until one is available; f.mu must be held.
func (f *Fake) allowPost(channel string, now time.Time) (time.Duration, bool) {
	rate, burst := f.opts.PostRate, float64(f.opts.Burst)
	if rate < 0 {
		return 0, true
	}
	b := f.buckets[channel]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		f.buckets[channel] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+elapsed.Seconds()*rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}
