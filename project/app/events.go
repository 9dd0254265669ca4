package app

import (
	"context"
	"errors"
)

// RecordUserHandler applies newUser events to the local user copies.
type RecordUserHandler struct{ d Deps }

// NewRecordUserHandler wires the use case.
func NewRecordUserHandler(d Deps) RecordUserHandler { return RecordUserHandler{d: d} }

// Handle stores the copy once per event, and only when it is newer than the one held.
func (h RecordUserHandler) Handle(ctx context.Context, eventID string, u UserCopy) error {
	if u.ID == "" {
		return errors.New("record user: empty user id")
	}
	_, err := h.d.Store.ApplyUser(ctx, eventID, u)
	return err
}

// RecordComment is a newComment (Live) or deleteComment event.
type RecordComment struct {
	EventID   string
	CommentID string
	CardID    string
	Live      bool
}

// RecordCommentHandler keeps cards' totalComment from comment events.
type RecordCommentHandler struct{ d Deps }

// NewRecordCommentHandler wires the use case.
func NewRecordCommentHandler(d Deps) RecordCommentHandler { return RecordCommentHandler{d: d} }

// Handle applies the event once; see Store.ApplyComment for why the count stays exact.
func (h RecordCommentHandler) Handle(ctx context.Context, cmd RecordComment) error {
	if cmd.CommentID == "" || cmd.CardID == "" {
		return errors.New("record comment: empty comment or card id")
	}
	_, err := h.d.Store.ApplyComment(ctx, cmd.EventID, cmd.CommentID, cmd.CardID, cmd.Live)
	return err
}
