package project_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/project/domain/project"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fields(err error) string {
	var ve *project.ValidationError
	if !errors.As(err, &ve) {
		return ""
	}
	var f []string
	for _, v := range ve.Violations {
		f = append(f, v.Field)
	}
	return strings.Join(f, ",")
}

func TestNewProjectValidation(t *testing.T) {
	cases := []struct {
		title, desc, want string
	}{
		{"ok", "", ""},
		{strings.Repeat("é", 200), strings.Repeat("d", 10_000), ""},
		{"", "", "title"},
		{"   ", "", "title"},
		{strings.Repeat("x", 201), "", "title"},
		{"ok", strings.Repeat("d", 10_001), "description"},
		{"", strings.Repeat("d", 10_001), "title,description"},
		{"bad \xff", "", "title"},
	}
	for _, tc := range cases {
		_, err := project.NewProject("p", tc.title, tc.desc, "ann", now)
		if got := fields(err); got != tc.want || (tc.want == "" && err != nil) {
			t.Errorf("%q/%d: fields %q (%v), want %q", tc.title[:min(len(tc.title), 5)], len(tc.desc), got, err, tc.want)
		}
	}
}

func TestStatus(t *testing.T) {
	for _, s := range []string{"todo", "in_progress", "done"} {
		if st, err := project.ParseStatus(s); err != nil || st.String() != s {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "Done", "closed", "in progress"} {
		if _, err := project.ParseStatus(s); fields(err) != "status" {
			t.Errorf("%q accepted: %v", s, err)
		}
	}
	c, err := project.NewCard("c", "p", "t", "", "", "ann", now)
	if err != nil || c.Status() != project.StatusTodo || c.Version() != 1 {
		t.Fatalf("default status: %v %v", c.Status(), err)
	}
	if _, err := project.NewCard("c", "p", "t", "", "doing", "ann", now); fields(err) != "status" {
		t.Fatalf("bad status: %v", err)
	}
}

func TestCardUpdateVersionsOncePerChange(t *testing.T) {
	c, _ := project.NewCard("c", "p", "t", "d", "todo", "ann", now)
	title, st := "t2", "done"
	ch, err := c.Update(&title, nil, &st, now.Add(time.Second))
	if err != nil || !ch.Edited || !ch.StatusChanged || ch.From != project.StatusTodo || c.Version() != 2 || c.Status() != project.StatusDone {
		t.Fatalf("both: %+v %v v%d", ch, err, c.Version())
	}
	same := "done"
	if ch, _ := c.Update(nil, nil, &same, now); ch.Any() || c.Version() != 2 {
		t.Fatalf("no-op bumped: %+v v%d", ch, c.Version())
	}
	bad := "nope"
	if _, err := c.Update(nil, nil, &bad, now); fields(err) != "status" || c.Status() != project.StatusDone {
		t.Fatalf("bad status changed the card: %v", err)
	}
	if v := c.Delete(); v != 3 {
		t.Fatalf("delete version %d", v)
	}
}

func TestWhoMayDoWhat(t *testing.T) {
	notFound := project.ErrProjectNotFound
	cases := []struct {
		access project.Access
		act    project.Action
		want   error
	}{
		{project.Owner, project.ActView, nil},
		{project.Owner, project.ActWorkOnCards, nil},
		{project.Owner, project.ActManage, nil},
		{project.MemberAccess, project.ActView, nil},
		{project.MemberAccess, project.ActWorkOnCards, nil},
		{project.MemberAccess, project.ActManage, project.ErrForbidden},
		{project.Stranger, project.ActView, notFound},
		{project.Stranger, project.ActWorkOnCards, notFound},
		{project.Stranger, project.ActManage, notFound},
	}
	for _, tc := range cases {
		if err := tc.access.Decide(tc.act, notFound); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("access %d action %d: %v, want %v", tc.access, tc.act, err, tc.want)
		}
	}
}

func TestProjectUpdate(t *testing.T) {
	p, _ := project.NewProject("p", "t", "", "ann", now)
	d := "new"
	if changed, err := p.Update(nil, &d, now.Add(time.Second)); !changed || err != nil || p.Version() != 2 || !p.UpdatedAt().After(p.CreatedAt()) {
		t.Fatalf("update: %v %v", changed, err)
	}
	empty := ""
	if _, err := p.Update(&empty, nil, now); fields(err) != "title" || p.Title() != "t" {
		t.Fatalf("empty title: %v", err)
	}
}
