// Package mongorepo is the MongoDB adapter of the notif ports (collections `notif`,
// `users` and `notif_counts`). Idempotency needs no transactions: a unique index on
// (eventId, userId) makes a replayed event's notifications collide with the ones
// already stored.
//
// The list's counts (a user's total and unread) are cached in `notif_counts`, keyed by
// a per-user change token, so that a list is one page query plus three _id lookups
// instead of a page query and a count over the user's notifications. See countsOf
// for why the cache cannot serve a count that misses a completed write, without
// transactions and without counters (FerretDB v1 applies $inc and $set as a
// read-modify-write of the whole document, so concurrent increments can be lost).
// The list itself never updates a document, only inserts: on FerretDB v1.24 an update
// holds one SQLite connection for its query while it waits for a second one for its
// transaction. In the list benchmark at 16 clients, with requests timing out and
// their scans going on, the database's pool of 100 connections ran out and it hung
// for good (a goroutine dump showed every update and find waiting for a connection).
package mongorepo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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

// tokenDoc is a user's change token in notif_counts (_id "t:<userId>"). Only writers
// write it, and each write sets a fresh random value and nothing else, so even a lost
// update between two writers (FerretDB v1 rewrites the whole document) leaves a value
// no reader has seen before. One write may give several users the same value: a token
// is only ever compared with the same user's cached counts.
type tokenDoc struct {
	ID    string `bson:"_id"`
	Token string `bson:"token"`
}

// countsDoc is a user's cached counts in notif_counts, under _id
// "c:<userId>:<epoch>:<token>" (countsKey). It is only ever inserted, by a reader, with
// the counts it computed after reading the token and epoch in its _id, and never
// changed: whichever reader inserts it first, its content is right for that key.
// touch deletes a user's counts documents, which no key can reach any more.
type countsDoc struct {
	ID     string `bson:"_id"`
	UserID string `bson:"userId"`
	Total  int    `bson:"total"`
	Unread int    `bson:"unread"`
}

// epochID is the document whose token changes at every start of the service
// (EnsureIndexes). It is part of every counts key, so a restart retires all cached
// counts: a process that died between a write and its token change restarts, and from
// then on that write is counted.
const epochID = "epoch"

// touchTimeout bounds the token change after a write. It runs detached from the
// caller's cancellation: a client that hangs up after its write was applied must not
// leave the cached counts current.
const touchTimeout = 30 * time.Second

// Repo implements app.Notifications and app.Users.
type Repo struct {
	notifs *mongo.Collection
	users  *mongo.Collection
	counts *mongo.Collection
}

// New returns the repository over db; call EnsureIndexes once at start.
func New(db *mongo.Database) *Repo {
	return &Repo{notifs: db.Collection("notif"), users: db.Collection("users"), counts: db.Collection("notif_counts")}
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

// indexCountsUser is notif_counts' index on userId, which touch deletes by.
const indexCountsUser = "counts_user"

// ensureIndex creates ix on c unless an index of its name exists (FerretDB v1 fails
// on createIndexes for an index that already exists).
func ensureIndex(ctx context.Context, c *mongo.Collection, ix mongo.IndexModel) error {
	cur, err := c.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("mongo: list indexes of %s: %w", c.Name(), err)
	}
	var existing []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &existing); err != nil {
		return fmt.Errorf("mongo: list indexes of %s: %w", c.Name(), err)
	}
	for _, e := range existing {
		if e.Name == *ix.Options.Name {
			return nil
		}
	}
	if _, err := c.Indexes().CreateOne(ctx, ix); err != nil {
		return fmt.Errorf("mongo: create index %s: %w", *ix.Options.Name, err)
	}
	return nil
}

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
//
// It also creates notif_counts if missing (FerretDB would create it on its first
// write, racing with the list's reads) and starts a new epoch there, which retires
// every cached count (see epochID).
func (r *Repo) EnsureIndexes(ctx context.Context) error {
	names, err := r.counts.Database().ListCollectionNames(ctx, bson.D{{Key: "name", Value: r.counts.Name()}})
	if err != nil {
		return fmt.Errorf("mongo: list collections: %w", err)
	}
	if len(names) == 0 {
		err := r.counts.Database().CreateCollection(ctx, r.counts.Name())
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == 48 { // NamespaceExists: a concurrent start created it
			err = nil
		}
		if err != nil {
			return fmt.Errorf("mongo: create %s: %w", r.counts.Name(), err)
		}
	}
	if err := r.setTokens(ctx, []string{epochID}); err != nil {
		return fmt.Errorf("mongo: new epoch: %w", err)
	}
	// touch deletes a user's cached counts by userId: an index, not a scan, on MongoDB.
	if err := ensureIndex(ctx, r.counts, mongo.IndexModel{
		Keys: bson.D{{Key: "userId", Value: 1}}, Options: options.Index().SetName(indexCountsUser),
	}); err != nil {
		return err
	}
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
//
// Then it changes every recipient's token, whatever the insert's outcome: also when
// every notification was a duplicate, so that a redelivery after a crash between the
// insert and the token change repairs the cached counts; and also after an error, as
// some documents may have been written. A failed token change fails the call, so the
// event is not acknowledged and its redelivery changes the tokens again.
func (r *Repo) AddForEvent(ctx context.Context, eventID string, ns []notification.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	docs := make([]any, len(ns))
	users := make([]string, 0, len(ns))
	for i, n := range ns {
		docs[i] = toDoc(eventID, n)
		users = append(users, n.UserID())
	}
	_, err := r.notifs.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		err = fmt.Errorf("mongo: insert notifications: %w", err)
	} else {
		err = nil
	}
	return errors.Join(err, r.touch(ctx, users...))
}

// touch gives each user a fresh change token, which retires their cached counts, and
// deletes those. It is called after the write it reports, never before: counts cached
// under the old token were counted before the token changed, and no list looks them
// up from then on (see countsOf).
func (r *Repo) touch(ctx context.Context, users ...string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), touchTimeout)
	defer cancel()
	slices.Sort(users)
	users = slices.Compact(users)
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = tokenID(u)
	}
	if err := r.setTokens(ctx, ids); err != nil {
		return fmt.Errorf("mongo: change tokens: %w", err)
	}
	// Only housekeeping: a counts document left behind is never read again.
	if _, err := r.counts.DeleteMany(ctx, bson.D{{Key: "userId", Value: oneOf(users)}}); err != nil {
		return fmt.Errorf("mongo: delete old counts: %w", err)
	}
	return nil
}

// setTokens sets a fresh token on the token documents ids. It first makes sure each
// exists (a duplicate key means it does), then updates them all in one statement.
// Not one upsert per document: FerretDB v1.24 keeps every statement's query open
// until the whole command ends, and a command of a few hundred upserts exhausted its
// connection pool and never completed.
func (r *Repo) setTokens(ctx context.Context, ids []string) error {
	docs := make([]any, len(ids))
	for i, id := range ids {
		docs[i] = tokenDoc{ID: id, Token: newToken()}
	}
	if _, err := r.counts.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil && !onlyDuplicates(err) {
		return err
	}
	_, err := r.counts.UpdateMany(ctx, bson.D{{Key: "_id", Value: oneOf(ids)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: newToken()}}}})
	return err
}

// oneOf matches any of vs: a plain equality for one value, which every server serves
// by its index (FerretDB pushes an _id equality down to SQLite), else $in.
func oneOf(vs []string) any {
	if len(vs) == 1 {
		return vs[0]
	}
	return bson.D{{Key: "$in", Value: vs}}
}

func tokenID(userID string) string { return "t:" + userID }
func countsKey(userID, epoch, token string) string {
	return "c:" + userID + ":" + epoch + ":" + token
}

// newToken returns 128 random bits, so no two writes ever set the same token.
func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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

// List serves a page newest first and the counts for its meta concurrently: the page
// query, and the counts from countsOf (two _id lookups while the cached counts are
// current, else one aggregation counting the user's notifications by read state,
// which gives the filtered total and the unread count at once). Skipping the count
// halves the work on FerretDB v1, which decodes every document of the collection for
// each query but an _id lookup; on MongoDB it saves a scan of the user's index entries.
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
		if d, ok := maxTime(gctx); ok {
			opts.SetMaxTime(d)
		}
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
		read, unread, err = r.countsOf(gctx, f.UserID)
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

// countsOf returns the user's read and unread counts: the cached ones stored under the
// current epoch and the user's current token, else a fresh count, which it caches
// under the epoch and token it read before counting.
//
// Why a cached count is exact: every write changes the user's token after it is
// applied (touch). Counts cached under token T were counted after T was read, so they
// include every write whose token change came before T was stored. A write whose
// token change comes later replaces T with a fresh value, T never comes back, so
// those counts are never looked up again. Between a write and its token change a
// list may still show the counts from before the write, as if it had come just
// before it. A token change that never happened (the process died in between) is
// made up for by a redelivery of the event, a retry of the request, or at the latest
// by the restart, which starts a new epoch. Proven by the contract suite's "counts
// stay exact under concurrent writes" and "a write shows in every list started after
// it returned, while lists run" (on FerretDB), and by TestCountsCache here.
func (r *Repo) countsOf(ctx context.Context, userID string) (read, unread int, err error) {
	var tok, epoch tokenDoc
	g, gctx := errgroup.WithContext(ctx)
	for id, into := range map[string]*tokenDoc{tokenID(userID): &tok, epochID: &epoch} {
		g.Go(func() error {
			err := r.counts.FindOne(gctx, bson.D{{Key: "_id", Value: id}}).Decode(into)
			if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
				return fmt.Errorf("mongo: read token: %w", err)
			}
			return nil // none yet: no write since this version started, token ""
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	key := countsKey(userID, epoch.Token, tok.Token)
	var cached countsDoc
	err = r.counts.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&cached)
	if err == nil {
		return cached.Total - cached.Unread, cached.Unread, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, 0, fmt.Errorf("mongo: read counts: %w", err)
	}
	read, unread, err = r.countByRead(ctx, userID)
	if err != nil {
		return 0, 0, err
	}
	// A failed insert costs the next list a count, nothing else; a duplicate key is
	// a concurrent list's insert of the same counts winning.
	_, _ = r.counts.InsertOne(ctx, countsDoc{ID: key, UserID: userID, Total: read + unread, Unread: unread})
	return read, unread, nil
}

// maxTime is what is left of ctx's deadline, sent with the list's two queries as
// maxTimeMS, so that the server stops a query whose caller gave up. Without it
// FerretDB v1 went on scanning for callers long gone: in the list benchmark, past
// the first timeouts, those scans took the CPU from the live ones until every
// request timed out.
func maxTime(ctx context.Context) (time.Duration, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return max(time.Until(deadline), time.Millisecond), true
}

func aggregateOpts(ctx context.Context) *options.AggregateOptions {
	opts := options.Aggregate()
	if d, ok := maxTime(ctx); ok {
		opts.SetMaxTime(d)
	}
	return opts
}

// countByRead counts the user's read and unread notifications in one aggregation.
func (r *Repo) countByRead(ctx context.Context, userID string) (read, unread int, err error) {
	cur, err := r.notifs.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "userId", Value: userID}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$read"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	}, aggregateOpts(ctx))
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

// MarkRead sets read on the user's notification and returns it, then changes the
// user's token (also when it was read already: a retry after a crash between the two
// must repair the cached counts). A failed token change fails the call, so the client
// retries it.
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
		err = fmt.Errorf("mongo: mark read: %w", err)
	}
	if err := errors.Join(err, r.touch(ctx, userID)); err != nil {
		return notification.Notification{}, withContext(ctx, err)
	}
	return fromDoc(d)
}

// MarkAllRead sets read on every unread notification of the user, then changes the
// user's token (also after an error, as some may have been marked).
func (r *Repo) MarkAllRead(ctx context.Context, userID string) error {
	_, err := r.notifs.UpdateMany(ctx,
		bson.D{{Key: "userId", Value: userID}, {Key: "read", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "read", Value: true}}}})
	if err != nil {
		err = fmt.Errorf("mongo: mark all read: %w", err)
	}
	if err := errors.Join(err, r.touch(ctx, userID)); err != nil {
		return withContext(ctx, err)
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
