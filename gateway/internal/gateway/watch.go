package gateway

import (
	"context"
	"time"
)

// watchDelay is how long a call runs before the gateway starts watching its
// client connection. Fast calls (nearly all) never pay for watching; a slow one
// whose client hangs up is cancelled within watchDelay of the hang-up at worst.
const watchDelay = 100 * time.Millisecond

// startWatch arms the watch timer for this request. fasthttp, unlike net/http,
// does not read from a connection while its handler runs, so nothing else would
// notice a client that went away.
func (c *call) startWatch() {
	c.mu.Lock()
	c.watchActive = true
	c.mu.Unlock()
	c.watch.Reset(watchDelay)
}

// stopWatch ends watching before the call is released: it stops the timer, wakes
// a watcher blocked on the client connection and waits for it to return.
func (c *call) stopWatch() {
	c.watch.Stop()
	c.mu.Lock()
	c.watchActive = false
	running := c.watchRunning
	c.watchRunning = false
	c.mu.Unlock()
	if !running {
		return
	}
	conn := c.rc.Conn()
	_ = conn.SetReadDeadline(time.Now())
	c.watching.Wait()
	// fasthttp sets its own read deadline before reading the next request.
	_ = conn.SetReadDeadline(time.Time{})
}

// onWatch runs on the timer's goroutine: it blocks until the client connection is
// readable, and if that is because the client closed it, cancels the call and
// cuts its service connection.
func (c *call) onWatch() {
	c.mu.Lock()
	if !c.watchActive || c.rc == nil {
		c.mu.Unlock()
		return
	}
	c.watchRunning = true
	c.watching.Add(1)
	gen := c.gen
	conn := c.rc.Conn()
	c.mu.Unlock()
	defer c.watching.Done()
	if clientGone(conn) && c.cancel(gen, context.Canceled) {
		c.abortBackend(gen)
	}
}
