package redisstream

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/redis/go-redis/v9"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/internal/consume"
)

// DeadLettersFrom returns up to count entries of group's dead-letter
// stream from the entry id start ("-" for the oldest), for paging through
// a long stream.
func DeadLettersFrom(ctx context.Context, client redis.UniversalClient, prefix, group, start string, count int64) ([]eventbus.DeadLetter, error) {
	msgs, err := client.XRangeN(ctx, eventbus.DeadLetterKey(prefix, group), start, "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstream: read dead letters of %s: %w", group, err)
	}
	out := make([]eventbus.DeadLetter, len(msgs))
	for i, m := range msgs {
		out[i] = consume.ParseDeadLetter(m.ID, stringFields(m.Values))
	}
	return out, nil
}

// ErrNoDeadLetter is returned for a dead-letter id that does not exist.
var ErrNoDeadLetter = errors.New("redisstream: no such dead letter")

// DeadLetter returns one entry of group's dead-letter stream.
func DeadLetter(ctx context.Context, client redis.UniversalClient, prefix, group, id string) (eventbus.DeadLetter, error) {
	dl, err := DeadLettersFrom(ctx, client, prefix, group, id, 1)
	if err != nil {
		return eventbus.DeadLetter{}, err
	}
	if len(dl) == 0 || dl[0].ID != id {
		return eventbus.DeadLetter{}, fmt.Errorf("%w: %s", ErrNoDeadLetter, id)
	}
	return dl[0], nil
}

// Redrive moves the dead letters ids of group to the group's redrive
// stream (eventbus.RedriveKey), which the group's subscribers read, so
// the events are handled again by that group only; it removes them from
// the dead-letter stream. An entry without a decodable envelope cannot be
// re-driven and is left in place with an error.
func Redrive(ctx context.Context, client redis.UniversalClient, prefix, group string, ids ...string) (int, error) {
	var errs []error
	n := 0
	for _, id := range ids {
		msgs, err := client.XRangeN(ctx, eventbus.DeadLetterKey(prefix, group), id, id, 1).Result()
		if err != nil {
			return n, fmt.Errorf("redisstream: read dead letter %s: %w", id, err)
		}
		if len(msgs) == 0 {
			errs = append(errs, fmt.Errorf("%w: %s", ErrNoDeadLetter, id))
			continue
		}
		f := stringFields(msgs[0].Values)
		if consume.NewDelivery("", id, f, 0).Err != nil {
			errs = append(errs, fmt.Errorf("redisstream: dead letter %s has no decodable envelope; fix it or drop it", id))
			continue
		}
		orig := maps.Clone(f)
		for _, k := range []string{consume.FieldError, consume.FieldStream, consume.FieldEntryID, consume.FieldDeliveries} {
			delete(orig, k)
		}
		pipe := client.Pipeline() // not MULTI: the keys may live on different cluster slots; a crash in between only duplicates
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: eventbus.RedriveKey(prefix, group), Values: consume.Values(orig)})
		pipe.XDel(ctx, eventbus.DeadLetterKey(prefix, group), id)
		if _, err := pipe.Exec(ctx); err != nil {
			return n, fmt.Errorf("redisstream: redrive %s: %w", id, err)
		}
		n++
	}
	return n, errors.Join(errs...)
}

// DropDeadLetters deletes the dead letters ids of group and returns how
// many existed.
func DropDeadLetters(ctx context.Context, client redis.UniversalClient, prefix, group string, ids ...string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	n, err := client.XDel(ctx, eventbus.DeadLetterKey(prefix, group), ids...).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstream: drop dead letters: %w", err)
	}
	return n, nil
}
