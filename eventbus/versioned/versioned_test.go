package versioned_test

import (
	"testing"

	"github.com/bugtracker/bugtracker/eventbus/versioned"
)

func TestNewer(t *testing.T) {
	for _, c := range []struct {
		held    versioned.Held
		version int64
		want    bool
	}{
		{versioned.Held{}, 1, true},
		{versioned.Held{Exists: true, Version: 2}, 3, true},
		{versioned.Held{Exists: true, Version: 2}, 2, false},
		{versioned.Held{Exists: true, Version: 2}, 1, false},
		{versioned.Held{Exists: true, Version: 2, Deleted: true}, 3, false},
	} {
		if got := versioned.Newer(c.held, c.version); got != c.want {
			t.Errorf("Newer(%+v, %d) = %v, want %v", c.held, c.version, got, c.want)
		}
	}
}

func TestMongoFilter(t *testing.T) {
	f := versioned.MongoFilter("u1", 3)
	or := f["$or"].([]any)
	if f["_id"] != "u1" || or[0].(map[string]any)[versioned.MongoVersionField].(map[string]any)["$lt"] != int64(3) ||
		f[versioned.MongoDeletedField].(map[string]any)["$ne"] != true {
		t.Fatalf("filter %v", f)
	}
}
