package streamid

import "testing"

func TestParseAndOrder(t *testing.T) {
	a, err := Parse("9-5")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("10")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Less(b) || b.Less(a) || a.Less(a) {
		t.Fatalf("ordering of %v and %v is wrong", a, b)
	}
	if b.String() != "10-0" || a.Next(9).String() != "9-6" || a.Next(12).String() != "12-0" {
		t.Fatal("String or Next is wrong")
	}
	for _, bad := range []string{"", "x-1", "1-x"} {
		if _, err := Parse(bad); err == nil {
			t.Fatalf("Parse(%q) accepted", bad)
		}
	}
}
