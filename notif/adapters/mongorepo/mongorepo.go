// Package mongorepo is the MongoDB adapter of the notif ports (collections `notif` and
// `users`). Idempotency needs no transactions: a unique index on (eventId, userId)
// makes a replayed event's notifications collide with the ones already stored.
package mongorepo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/bugtracker/bugtracker/eventbus/versioned"
	"github.com/bugtracker/bugtracker/notif/app"
	"github.com/bugtracker/bugtracker/notif/domain/notification"
)

type notifDoc struct {
	ID        string    `bson:"_id"`
	EventID   string    `bson:"eventId"`
	UserID    string    `bson:"userId"`
	Type      string    `bson:"type"`
	Message   string    `bson:"message"`
	ActorID   string    `bson:"actorId"`
	ProjectID string    `bson:"projectId,omitempty"`
	CardID    string    `bson:"cardId,omitempty"`
	CommentID string    `bson:"commentId,omitempty"`
	Read      bool      `bson:"read"`
	CreatedAt time.Time `bson:"createdAt"`
}

type userDoc struct {
	ID               string    `bson:"_id"`
	Name             string    `bson:"name"`
	Email            string    `bson:"email"`
	RegisteredAt     time.Time `bson:"registeredAt"`
	AggregateVersion int64     `bson:"aggregateVersion"`
}

// Repo implements app.Notifications and app.Users.
type Repo struct {
	notifs *mongo.Collection
	users  *mongo.Collection
}

// New returns the repository over db; call EnsureIndexes once at start.
func New(db *mongo.Database) *Repo {
	return &Repo{notifs: db.Collection("notif"), users: db.Collection("users")}
}

// Index names. Each query of the repository is served by one of them, in the
// equality-sort order MongoDB needs to avoid an in-memory sort (checked by
// TestQueriesUseIndexes with explain):
//   - indexEventUser makes (event id, recipient) unique: the exactly-once key.
//   - indexUserNewest serves the full list (userId, newest first) and its total.
//   - indexUserUnreadNewest serves the unread and read lists, the unread count
//     and read-all (userId and read, then newest first).
const (
	indexEventUser        = "event_user_unique"
	indexUserNewest       = "user_newest"
	indexUserUnreadNewest = "user_read_newest"
)

// obsoleteIndexes were created by earlier versions and no query needs them any
// more; EnsureIndexes drops them so they stop costing writes.
var obsoleteIndexes = []string{"user_read"}

func wantedIndexes() []mongo.IndexModel {
	newest := bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}
	return []mongo.IndexModel{
		{Keys: bson.D{{Key: "eventId", Value: 1}, {Key: "userId", Value: 1}}, Options: options.Index().SetUnique(true).SetName(indexEventUser)},
		{Keys: append(bson.D{{Key: "userId", Value: 1}}, newest...), Options: options.Index().SetName(indexUserNewest)},
		{Keys: append(bson.D{{Key: "userId", Value: 1}, {Key: "read", Value: 1}}, newest...), Options: options.Index().SetName(indexUserUnreadNewest)},
	}
}

// EnsureIndexes creates the indexes the queries and idempotency rely on. It creates
// only the missing ones: FerretDB v1 fails on createIndexes for an index that already
// exists, which every restart would otherwise hit. Indexes of earlier versions that
// no query uses are dropped.
func (r *Repo) EnsureIndexes(ctx context.Context) error {
	cur, err := r.notifs.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("mongo: list indexes: %w", err)
	}
	var existing []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &existing); err != nil {
		return fmt.Errorf("mongo: list indexes: %w", err)
	}
	have := map[string]bool{}
	for _, ix := range existing {
		have[ix.Name] = true
	}
	for _, name := range obsoleteIndexes {
		if have[name] {
			if _, err := r.notifs.Indexes().DropOne(ctx, name); err != nil {
				return fmt.Errorf("mongo: drop obsolete index %s: %w", name, err)
			}
		}
	}
	var missing []mongo.IndexModel
	for _, ix := range wantedIndexes() {
		if !have[*ix.Options.Name] {
			missing = append(missing, ix)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := r.notifs.Indexes().CreateMany(ctx, missing); err != nil {
		return fmt.Errorf("mongo: create indexes: %w", err)
	}
	return nil
}

// Upsert stores the user copy unless the one held is as new or newer: the
// versioned filter matches only an older copy, so for a newer one the
// upsert tries a second insert of the same _id, and the duplicate key
// error means "stale, skip" (as it does when a concurrent upsert won).
func (r *Repo) Upsert(ctx context.Context, u app.UserCopy) error {
	doc := userDoc{ID: u.ID, Name: u.Name, Email: u.Email, RegisteredAt: u.RegisteredAt.UTC(), AggregateVersion: u.Version}
	_, err := r.users.ReplaceOne(ctx, versioned.MongoFilter(u.ID, u.Version), doc, options.Replace().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("mongo: upsert user: %w", err)
	}
	return nil
}

// UserCopy returns the stored copy of user id, if any.
func (r *Repo) UserCopy(ctx context.Context, id string) (app.UserCopy, bool, error) {
	var d userDoc
	err := r.users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return app.UserCopy{}, false, nil
	}
	if err != nil {
		return app.UserCopy{}, false, fmt.Errorf("mongo: find user: %w", err)
	}
	return app.UserCopy{ID: d.ID, Name: d.Name, Email: d.Email, RegisteredAt: d.RegisteredAt, Version: d.AggregateVersion}, true, nil
}

// AddForEvent inserts the event's notifications in one unordered insertMany. A
// notification already stored for (eventId, userId) (a redelivery, or a replay after
// Redis lost its streams) fails on the unique index alone and the others are still
// inserted, so the stored one, with its id and read flag, stays as it is. No
// transaction is needed (FerretDB has none): every document stands alone.
func (r *Repo) AddForEvent(ctx context.Context, eventID string, ns []notification.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	docs := make([]any, len(ns))
	for i, n := range ns {
		docs[i] = toDoc(eventID, n)
	}
	_, err := r.notifs.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("mongo: insert notifications: %w", err)
	}
	return nil
}

// onlyDuplicates reports whether every failure in err is a duplicate key, the
// expected answer for notifications stored before. mongo.IsDuplicateKeyError is not
// enough: it is true when any one of many write errors is a duplicate, and would hide
// the others.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

// List serves a page newest first and the counts for its meta in two concurrent
// queries: the page, and one aggregation counting the user's notifications by read
// state, which gives the filtered total and the unread count at once. One
// aggregation instead of two counts matters on FerretDB v1, which reads every
// document of the collection for each query (about half the list's time with 1,000
// notifications); on MongoDB it is one scan of the user's index entries.
func (r *Repo) List(ctx context.Context, f app.Filter, skip, limit int) ([]notification.Notification, int, int, error) {
	filter := bson.D{{Key: "userId", Value: f.UserID}}
	if f.Unread != nil {
		filter = append(filter, bson.E{Key: "read", Value: !*f.Unread})
	}
	var (
		docs         []notifDoc
		read, unread int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		opts := options.Find().
			SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).
			SetSkip(int64(skip)).SetLimit(int64(limit))
		cur, err := r.notifs.Find(gctx, filter, opts)
		if err != nil {
			return fmt.Errorf("mongo: find notifications: %w", err)
		}
		if err := cur.All(gctx, &docs); err != nil {
			return fmt.Errorf("mongo: read notifications: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		read, unread, err = r.countByRead(gctx, f.UserID)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, 0, 0, withContext(ctx, err)
	}
	total := read + unread
	if f.Unread != nil && *f.Unread {
		total = unread
	} else if f.Unread != nil {
		total = read
	}
	items := make([]notification.Notification, 0, len(docs))
	for _, d := range docs {
		n, err := fromDoc(d)
		if err != nil {
			return nil, 0, 0, err
		}
		items = append(items, n)
	}
	return items, total, unread, nil
}

// countByRead counts the user's read and unread notifications in one aggregation.
func (r *Repo) countByRead(ctx context.Context, userID string) (read, unread int, err error) {
	cur, err := r.notifs.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "userId", Value: userID}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$read"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("mongo: count notifications: %w", err)
	}
	var groups []struct {
		Read bool `bson:"_id"`
		N    int  `bson:"n"`
	}
	if err := cur.All(ctx, &groups); err != nil {
		return 0, 0, fmt.Errorf("mongo: count notifications: %w", err)
	}
	for _, g := range groups {
		if g.Read {
			read += g.N
		} else {
			unread += g.N
		}
	}
	return read, unread, nil
}

// MarkRead sets read on the user's notification and returns it.
func (r *Repo) MarkRead(ctx context.Context, userID, id string) (notification.Notification, error) {
	var d notifDoc
	err := r.notifs.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "userId", Value: userID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "read", Value: true}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notification.Notification{}, notification.ErrNotFound
	}
	if err != nil {
		return notification.Notification{}, withContext(ctx, fmt.Errorf("mongo: mark read: %w", err))
	}
	return fromDoc(d)
}

// MarkAllRead sets read on every unread notification of the user.
func (r *Repo) MarkAllRead(ctx context.Context, userID string) error {
	_, err := r.notifs.UpdateMany(ctx,
		bson.D{{Key: "userId", Value: userID}, {Key: "read", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "read", Value: true}}}})
	if err != nil {
		return withContext(ctx, fmt.Errorf("mongo: mark all read: %w", err))
	}
	return nil
}

// withContext makes a failure caused by the caller's deadline or cancellation
// recognisable with errors.Is(err, context.DeadlineExceeded) (or Canceled), however
// the driver wrapped it, so the HTTP port can answer 503 rather than 500.
func withContext(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

func toDoc(eventID string, n notification.Notification) notifDoc {
	refs := n.Refs()
	return notifDoc{
		ID: n.ID(), EventID: eventID, UserID: n.UserID(), Type: n.Type().String(), Message: n.Message(),
		ActorID: n.ActorID(), ProjectID: refs.ProjectID, CardID: refs.CardID, CommentID: refs.CommentID,
		Read: n.Read(), CreatedAt: n.CreatedAt(),
	}
}

func fromDoc(d notifDoc) (notification.Notification, error) {
	typ, err := notification.ParseType(d.Type)
	if err != nil {
		return notification.Notification{}, errors.Join(errors.New("mongo: stored notification"), err)
	}
	refs := notification.Refs{ProjectID: d.ProjectID, CardID: d.CardID, CommentID: d.CommentID}
	return notification.UnmarshalFromDB(d.ID, d.UserID, typ, d.Message, d.ActorID, refs, d.Read, d.CreatedAt), nil
}
