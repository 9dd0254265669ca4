// Package streamid compares Redis stream entry ids ("<ms>-<seq>"), which
// must be compared numerically: "9-0" sorts before "10-0".
package streamid

import (
	"fmt"
	"strconv"
	"strings"
)

// ID is a parsed stream entry id.
type ID struct{ MS, Seq uint64 }

// Parse parses "<ms>-<seq>"; a bare "<ms>" means sequence 0, as in Redis.
func Parse(s string) (ID, error) {
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("stream id %q: %w", s, err)
	}
	var seq uint64
	if hasSeq {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return ID{}, fmt.Errorf("stream id %q: %w", s, err)
		}
	}
	return ID{ms, seq}, nil
}

// String formats the id the way Redis does.
func (id ID) String() string { return fmt.Sprintf("%d-%d", id.MS, id.Seq) }

// Less reports whether id sorts before o.
func (id ID) Less(o ID) bool { return id.MS < o.MS || (id.MS == o.MS && id.Seq < o.Seq) }

// Next returns the smallest id greater than id whose millisecond part is at
// least ms, which is how Redis allocates ids for XADD *.
func (id ID) Next(ms uint64) ID {
	if ms > id.MS {
		return ID{ms, 0}
	}
	return ID{id.MS, id.Seq + 1}
}
