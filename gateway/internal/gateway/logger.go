package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// luraLogger adapts slog to lura's logging.Logger. lura's info lines describe its own
// server, which the gateway does not use, so they are demoted to debug.
type luraLogger struct{ l *slog.Logger }

// log writes v, joined by spaces, at level.
func (l luraLogger) log(level slog.Level, v []interface{}) {
	if !l.l.Enabled(context.Background(), level) {
		return
	}
	l.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintln(v...)), "component", "lura")
}

// Debug logs at debug level.
func (l luraLogger) Debug(v ...interface{}) { l.log(slog.LevelDebug, v) }

// Info logs at debug level; see the type's comment.
func (l luraLogger) Info(v ...interface{}) { l.log(slog.LevelDebug, v) }

// Warning logs at warn level.
func (l luraLogger) Warning(v ...interface{}) { l.log(slog.LevelWarn, v) }

// Error logs at error level.
func (l luraLogger) Error(v ...interface{}) { l.log(slog.LevelError, v) }

// Critical logs at error level.
func (l luraLogger) Critical(v ...interface{}) { l.log(slog.LevelError, v) }

// Fatal logs at error level; lura calls it for broken proxy stacks and carries on.
func (l luraLogger) Fatal(v ...interface{}) { l.log(slog.LevelError, v) }
