package argon2

import (
	"strings"
	"testing"
)

func TestHashAndVerify(t *testing.T) {
	h := New(Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1})
	hash, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected encoding %q", hash)
	}
	if ok, err := h.Verify("correct horse", hash); err != nil || !ok {
		t.Fatalf("right password refused: %v %v", ok, err)
	}
	if ok, _ := h.Verify("wrong horse", hash); ok {
		t.Fatal("wrong password accepted")
	}
	again, _ := h.Hash("correct horse")
	if again == hash {
		t.Fatal("salt not random")
	}
	if (Params{MemoryKiB: 1024, Iterations: 2, Parallelism: 1}).Validate() == nil {
		t.Fatal("weak params accepted")
	}
}
