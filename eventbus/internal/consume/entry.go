// Package consume holds what the Redis and in-memory backends share: the
// layout of stream entries and dead letters, and the subscriber loop. Both
// backends run the same loop over a small Transport so that the memory bus
// used in service tests behaves exactly like Redis.
package consume

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/bugtracker/bugtracker/eventbus"
)

// Entry field names. The envelope is the only field consumers decode; type
// and id are duplicated so that XRANGE output is readable by an operator.
// The last four are added to dead-letter entries.
const (
	FieldEnvelope   = "envelope"
	FieldType       = "type"
	FieldID         = "id"
	FieldError      = "error"
	FieldStream     = "stream"
	FieldEntryID    = "entry_id"
	FieldDeliveries = "deliveries"
)

// EntryFields returns the stream entry fields carrying env.
func EntryFields(env eventbus.Envelope) (map[string]string, error) {
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("eventbus: encode envelope %s: %w", env.ID, err)
	}
	return map[string]string{FieldType: env.Type, FieldID: env.ID, FieldEnvelope: string(b)}, nil
}

// EntryValues returns the XADD arguments of the entry carrying env, whose
// JSON encoding is encoded: the fields of EntryFields, in the key order of
// Values, without building and sorting a map for every entry.
func EntryValues(env eventbus.Envelope, encoded string) []any {
	return []any{FieldEnvelope, encoded, FieldID, env.ID, FieldType, env.Type}
}

// Values flattens fields into XADD arguments in key order, so that entries
// look the same every time.
func Values(fields map[string]string) []any {
	out := make([]any, 0, 2*len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		out = append(out, k, fields[k])
	}
	return out
}

// Delivery is a message as read from a backend, together with its raw
// fields (copied into a dead letter) and the error met decoding it.
type Delivery struct {
	eventbus.Message
	Fields map[string]string
	Err    error
}

// NewDelivery decodes the envelope field of an entry. A decoding failure is
// kept in Err rather than returned, because the loop must dead-letter the
// entry instead of failing the whole batch.
func NewDelivery(stream, id string, fields map[string]string, deliveries int64) Delivery {
	d := Delivery{Message: eventbus.Message{Stream: stream, ID: id, Deliveries: deliveries}, Fields: fields}
	raw, ok := fields[FieldEnvelope]
	switch {
	case !ok:
		d.Err = errors.New("entry has no envelope field")
	case json.Unmarshal([]byte(raw), &d.Envelope) != nil:
		d.Err = errors.New("entry has an undecodable envelope")
	}
	return d
}

// DeadLetterFields returns the fields of the dead-letter entry for d: the
// original fields plus why, where from and after how many deliveries.
func DeadLetterFields(d Delivery, reason string) map[string]string {
	f := maps.Clone(d.Fields)
	if f == nil {
		f = map[string]string{}
	}
	f[FieldError] = reason
	f[FieldStream] = d.Stream
	f[FieldEntryID] = d.ID
	f[FieldDeliveries] = strconv.FormatInt(d.Deliveries, 10)
	return f
}

// ParseDeadLetter is the inverse of DeadLetterFields.
func ParseDeadLetter(id string, f map[string]string) eventbus.DeadLetter {
	dl := eventbus.DeadLetter{
		ID:      id,
		Stream:  f[FieldStream],
		EntryID: f[FieldEntryID],
		Error:   f[FieldError],
		Raw:     f[FieldEnvelope],
	}
	dl.Deliveries, _ = strconv.ParseInt(f[FieldDeliveries], 10, 64)
	if json.Unmarshal([]byte(dl.Raw), &dl.Envelope) != nil {
		dl.Envelope = eventbus.Envelope{}
	}
	return dl
}
