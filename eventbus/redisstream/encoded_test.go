package redisstream_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/bugtracker/bugtracker/eventbus"
	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/eventbus/internal/redistest"
)

// TestPublishEncodedAppendsTheStoredEncoding: PublishEncoded (the relay's
// path) writes the encoding it is given as the entry's envelope, byte for
// byte, with the same fields as Publish, and refuses envelopes and
// encodings that do not pair up.
func TestPublishEncodedAppendsTheStoredEncoding(t *testing.T) {
	ctx := context.Background()
	client := redistest.Real(t)
	prefix, pub := publisher(t, client)
	a, b := card(t), card(t)
	plain, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	// Indented, so that an encoding of its own would show.
	stored, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.PublishEncoded(ctx, []eventbus.Envelope{a, b}, []string{string(plain)}); err == nil {
		t.Fatal("PublishEncoded accepted 2 envelopes with 1 encoding")
	}
	if _, err := pub.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	ids, err := pub.PublishEncoded(ctx, []eventbus.Envelope{b}, []string{string(stored)})
	if err != nil || len(ids) != 1 {
		t.Fatalf("PublishEncoded: %v %v", ids, err)
	}
	entries, err := client.XRange(ctx, eventbus.StreamKey(prefix, contracts.FamilyCard), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[1].ID != ids[0] {
		t.Fatalf("stream holds %v, want the two entries, the second %s", entries, ids[0])
	}
	for i, want := range []struct {
		env  eventbus.Envelope
		json []byte
	}{{a, plain}, {b, stored}} {
		v := entries[i].Values
		if keys := slices.Sorted(maps.Keys(v)); !slices.Equal(keys, []string{"envelope", "id", "type"}) {
			t.Fatalf("entry %d has fields %q", i, keys)
		}
		if v["envelope"] != string(want.json) || v["id"] != want.env.ID || v["type"] != want.env.Type {
			t.Errorf("entry %d is %v, want envelope %s, id %s, type %s", i, v, want.json, want.env.ID, want.env.Type)
		}
	}
}
