package notification

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Audience is who belonged to a project when an event about it happened: its
// owner and its members, as the producing service read them in the same
// transaction as the change. Recipients are computed from it rather than from
// a membership copy kept by notif, so that a member added after an event is
// not told about it and a kicked member is not told about later ones,
// whatever order the streams are read in (see the eventbus/contracts package
// documentation).
type Audience struct {
	OwnerID   string
	MemberIDs []string
}

// ErrNoRecipientRule means the type has no audience rule: registration
// notifications name their recipients themselves (newNotif).
var ErrNoRecipientRule = errors.New("notification: type has no audience rule")

// Recipients applies API.md's recipient rules to an audience: project events
// (project_created, project_deleted) go to the owner and every member, the
// actor included, so an owner is told of their own project; card and comment
// events go to the owner and every member except the actor, who knows what
// they did. The owner comes first, then the members in the audience's order;
// duplicates and empty ids are dropped, so a malformed audience cannot make
// anyone receive one event twice.
func Recipients(t Type, a Audience, actorID string) ([]string, error) {
	var exceptActor bool
	switch t {
	case ProjectCreated, ProjectDeleted:
	case CardCreated, CardStatusChanged, CommentCreated:
		exceptActor = true
	default:
		return nil, fmt.Errorf("%w: %s", ErrNoRecipientRule, t)
	}
	seen := make(map[string]bool, len(a.MemberIDs)+1)
	out := make([]string, 0, len(a.MemberIDs)+1)
	for _, id := range append([]string{a.OwnerID}, a.MemberIDs...) {
		if id == "" || seen[id] || (exceptActor && id == actorID) {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// Subject names what a notification is about, in the words of the event that
// caused it, so that a message can be written without asking other services.
type Subject struct {
	// ActorName is the display name of the user who acted.
	ActorName string
	// ProjectTitle is the title of the project concerned.
	ProjectTitle string
	// CardTitle is the title of the card concerned, for card and comment events.
	CardTitle string
	// Status is the card's new status (todo, in_progress, done), for card_status_changed.
	Status string
	// Comment is the comment's body, for comment_created; the message quotes its start.
	Comment string
}

// Field bounds of a message. Names and titles are cut to the limits the
// producing services already enforce (API.md), so a well-formed event is never
// shortened; they only protect the message bound from a malformed one.
const (
	maxActorLen   = 100
	maxTitleLen   = 200
	maxExcerptLen = 80
)

// statusLabels words the card statuses for people.
var statusLabels = map[string]string{"todo": "to do", "in_progress": "in progress", "done": "done"}

// Message writes the human-readable text of a notification of type t, naming
// the actor and the object, e.g. "Ann moved 'Login fails on Safari' to done in
// 'Web app'". A missing name or title is replaced by a neutral word rather
// than failing, because an event cannot be corrected once published and a
// vague notification is better than none. Registration messages are written
// by their producer (newNotif), so asking for one is an error. Every message
// fits MaxMessageLen.
func Message(t Type, s Subject) (string, error) {
	actor := field(s.ActorName, maxActorLen, "Someone", false)
	project := field(s.ProjectTitle, maxTitleLen, "a project", true)
	card := field(s.CardTitle, maxTitleLen, "a card", true)
	switch t {
	case ProjectCreated:
		return actor + " created the project " + project, nil
	case ProjectDeleted:
		return actor + " deleted the project " + project, nil
	case CardCreated:
		return actor + " created " + card + " in " + project, nil
	case CardStatusChanged:
		status, ok := statusLabels[s.Status]
		if !ok {
			status = field(strings.ReplaceAll(s.Status, "_", " "), 40, "another status", false)
		}
		return actor + " moved " + card + " to " + status + " in " + project, nil
	case CommentCreated:
		msg := actor + " commented on " + card + " in " + project
		if excerpt := field(s.Comment, maxExcerptLen, "", false); excerpt != "" {
			msg += `: "` + excerpt + `"`
		}
		return msg, nil
	default:
		return "", fmt.Errorf("notification: no message template for %s", t)
	}
}

// field makes s fit on one line of a message: control characters and runs of
// white space become one space, and a text longer than limit runes is cut
// with an ellipsis. An empty result is replaced by fallback; quoted wraps a
// non-fallback value in single quotes, the way titles appear in messages.
func field(s string, limit int, fallback string, quoted bool) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	if out == "" {
		return fallback
	}
	if utf8.RuneCountInString(out) > limit {
		runes := []rune(out)
		out = strings.TrimRight(string(runes[:limit-1]), " ") + "…"
	}
	if quoted {
		return "'" + out + "'"
	}
	return out
}
