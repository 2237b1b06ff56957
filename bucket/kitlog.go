// Adapter from the go-kit logger objstore wants to the slog Strata uses.

package bucket

import (
	"context"
	"fmt"
	"log/slog"
)

// kitLogger satisfies go-kit's log.Logger (Log(keyvals ...any) error) by
// forwarding to slog, mapping go-kit's "level" and "msg" keys.
type kitLogger struct{ l *slog.Logger }

func (k kitLogger) Log(keyvals ...any) error {
	level := slog.LevelInfo
	msg := ""
	attrs := make([]any, 0, len(keyvals))
	for i := 0; i < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		var val any = "(MISSING)"
		if i+1 < len(keyvals) {
			val = keyvals[i+1]
		}
		switch key {
		case "level":
			// go-kit's level values print as debug, info, warn, error.
			switch fmt.Sprint(val) {
			case "debug":
				level = slog.LevelDebug
			case "warn":
				level = slog.LevelWarn
			case "error":
				level = slog.LevelError
			}
			continue
		case "msg":
			if msg == "" {
				msg = fmt.Sprint(val)
				continue
			}
		}
		attrs = append(attrs, key, val)
	}
	k.l.Log(context.Background(), level, msg, attrs...)
	return nil
}
