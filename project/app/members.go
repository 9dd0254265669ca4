package app

import (
	"context"

	"github.com/bugtracker/bugtracker/eventbus/contracts"
	"github.com/bugtracker/bugtracker/project/domain/project"
)

// AddMember asks the owner's project to take in a user.
type AddMember struct {
	CallerID  string
	ProjectID string
	UserID    string
}

// AddMemberHandler adds members; owner only.
type AddMemberHandler struct {
	d      Deps
	policy Policy
}

// NewAddMemberHandler wires the use case.
func NewAddMemberHandler(d Deps, p Policy) AddMemberHandler { return AddMemberHandler{d: d, policy: p} }

// Handle adds the member and publishes memberAdded. The project row stays locked from
// the check to the insert, so concurrent adds cannot pass the member bound together,
// and the membership's primary key turns a concurrent duplicate into
// project.ErrAlreadyMember (TestConcurrentAddMember).
func (h AddMemberHandler) Handle(ctx context.Context, cmd AddMember) (project.Member, error) {
	var m project.Member
	err := h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		p, err := h.policy.AuthorizeTx(ctx, tx, cmd.ProjectID, cmd.CallerID, project.ActManage, project.ErrProjectNotFound)
		if err != nil {
			return err
		}
		u, err := tx.User(ctx, cmd.UserID)
		if err != nil {
			return err
		}
		if cmd.UserID == p.OwnerID() {
			return project.ErrAlreadyMember
		}
		if in, err := tx.IsMember(ctx, p.ID(), cmd.UserID); err != nil {
			return err
		} else if in {
			return project.ErrAlreadyMember
		}
		n, err := tx.CountMembers(ctx, p.ID())
		if err != nil {
			return err
		}
		if n >= int(h.d.MaxMembers) {
			return project.ErrTooManyMembers
		}
		now := h.d.now()
		version, err := tx.AddMember(ctx, p.ID(), u.ID, now)
		if err != nil {
			return err
		}
		m = project.Member{UserID: u.ID, Name: u.Name, Email: u.Email, Role: project.RoleMember, AddedAt: now}
		return publish(ctx, tx, now, aggregateEvent{contracts.MemberAdded{
			ProjectID: p.ID(), UserID: u.ID, Role: project.RoleMember.String(), AddedBy: cmd.CallerID,
			AddedAt: now, AggregateVersion: version,
		}, contracts.MembershipID(p.ID(), u.ID)})
	})
	return m, err
}

// ListMembers asks for a page of a project's members.
type ListMembers struct {
	CallerID  string
	ProjectID string
	Offset    int
	Limit     int
}

// ListMembersHandler lists members to the owner and members.
type ListMembersHandler struct {
	d      Deps
	policy Policy
}

// NewListMembersHandler wires the query.
func NewListMembersHandler(d Deps, p Policy) ListMembersHandler {
	return ListMembersHandler{d: d, policy: p}
}

// Handle returns the page (owner first) and the number of members with the owner.
func (h ListMembersHandler) Handle(ctx context.Context, q ListMembers) ([]project.Member, int, error) {
	if _, err := h.policy.Authorize(ctx, q.ProjectID, q.CallerID, project.ActView, project.ErrProjectNotFound); err != nil {
		return nil, 0, err
	}
	return h.d.Store.ListMembers(ctx, q.ProjectID, q.Offset, q.Limit)
}

// RemoveMemberHandler kicks members; owner only.
type RemoveMemberHandler struct {
	d      Deps
	policy Policy
}

// NewRemoveMemberHandler wires the use case.
func NewRemoveMemberHandler(d Deps, p Policy) RemoveMemberHandler {
	return RemoveMemberHandler{d: d, policy: p}
}

// Handle ends the membership and publishes memberRemoved. The kicked member's next
// request finds no membership (404), since every access check reads it afresh.
func (h RemoveMemberHandler) Handle(ctx context.Context, callerID, projectID, userID string) error {
	return h.d.Store.Write(ctx, func(ctx context.Context, tx Tx) error {
		p, err := h.policy.AuthorizeTx(ctx, tx, projectID, callerID, project.ActManage, project.ErrProjectNotFound)
		if err != nil {
			return err
		}
		if userID == p.OwnerID() {
			return project.ErrOwnerNotRemovable
		}
		version, err := tx.RemoveMember(ctx, projectID, userID)
		if err != nil {
			return err
		}
		now := h.d.now()
		return publish(ctx, tx, now, aggregateEvent{contracts.MemberRemoved{
			ProjectID: projectID, UserID: userID, RemovedBy: callerID, RemovedAt: now, AggregateVersion: version,
		}, contracts.MembershipID(projectID, userID)})
	})
}
