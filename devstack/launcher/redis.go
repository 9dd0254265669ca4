package launcher

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// StartRedis starts an embedded Redis (miniredis) on addr, for example
// "127.0.0.1:0" for a free port, and returns its redis:// URL for database
// 0 and a function that stops it.
func StartRedis(addr string) (url string, stop func(), err error) {
	m := miniredis.NewMiniRedis()

	if err := m.StartAddr(addr); err != nil {
		return "", nil, fmt.Errorf("start embedded Redis on %s: %w", addr, err)
	}

	return "redis://" + m.Addr() + "/0", m.Close, nil
}
