package mcp

import (
	"context"
	"fmt"
	"strings"
	"sync"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/account"
	"github.com/imap-mcp/imap-mcp/mail"
	"github.com/imap-mcp/imap-mcp/oauth"
	"github.com/imap-mcp/imap-mcp/store"
)

// NewMailResult is the result of list_new_messages.
type NewMailResult struct {
	Folders []FolderNews `json:"folders"`
	Notice  string       `json:"notice"`
}

// FolderNews is what changed in one folder since the client's last look.
type FolderNews struct {
	AccountID string `json:"account_id"`
	Account   string `json:"account" jsonschema:"The account's address"`
	Folder    string `json:"folder"`
	Status    string `json:"status" jsonschema:"since_last_look; first_look: no earlier mark, the most recent messages are shown; reset: the server rebuilt the folder (new UIDVALIDITY), so the mark started over and the most recent messages are shown; error"`
	// NewTotal counts the new messages; Messages holds the newest of them.
	NewTotal         int              `json:"new_total" jsonschema:"New messages since the last look (0 on a first look or reset)"`
	Messages         []MessageSummary `json:"messages" jsonschema:"Newest first, at most limit"`
	FlagChanges      []MessageSummary `json:"flag_changes,omitempty" jsonschema:"Older messages whose flags changed since the last look (read, flagged or answered elsewhere), newest first"`
	FlagChangesTotal int              `json:"flag_changes_total,omitempty"`
	Error            string           `json:"error,omitempty"`
	// newLines and changedLines are the messages as text lines.
	newLines, changedLines string
}

type newMailArgs struct {
	AccountID string   `json:"account_id"`
	Folders   []string `json:"folders"`
	Limit     float64  `json:"limit"`
}

// Bounds of list_new_messages.
const (
	maxNewFolders     = 20
	defaultNewLimit   = 20
	maxNewLimit       = 100
	newMailAccountsAt = 4 // accounts asked at once
)

func (s *Server) newMailTools() []Tool {
	return []Tool{{Scope: oauth.ScopeRead, Handler: s.listNewMessages, Def: tool[NewMailResult]("list_new_messages",
		"Lists what arrived since this client last called it: per account and folder (default: the INBOX of every account), "+
			"the new messages, newest first, one compact line each, and older messages whose flags changed elsewhere (where the server "+
			"reports it). The first call for a folder shows its most recent few messages and sets the mark; each call moves the mark. "+
			"Each connected client has its own marks. Nothing is marked as read.",
		hints("List new messages", true, false, false, false),
		mcplib.WithString("account_id", mcplib.MaxLength(64), mcplib.Description("Only this account, from list_accounts. Omit for every account.")),
		mcplib.WithArray("folders", mcplib.MaxItems(maxNewFolders), mcplib.Items(map[string]any{"type": "string", "minLength": 1, "maxLength": 512}),
			mcplib.Description("Folders to look at, as list_folders names them (default INBOX; up to 20).")),
		mcplib.WithNumber("limit", mcplib.Min(1), mcplib.Max(maxNewLimit), mcplib.DefaultNumber(defaultNewLimit),
			mcplib.Description("Most messages listed per folder (1-100, default 20); new_total counts them all.")))}}
}

func (s *Server) listNewMessages(ctx context.Context, req mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
	var a newMailArgs
	if err := bind(req, &a); err != nil {
		return result(nil, "", err, nil)
	}
	p, _ := oauth.PrincipalFrom(ctx)
	if p.GrantID == "" {
		return result(nil, "", fail("list_new_messages keeps a mark per connected client, and this token belongs to none."), nil)
	}
	folders := a.Folders
	if len(folders) == 0 {
		folders = []string{"INBOX"}
	}
	seen := map[string]bool{}
	for _, f := range folders {
		if strings.TrimSpace(f) == "" || seen[f] {
			return result(nil, "", fail("folders must be distinct folder names from list_folders, not %q.", f), nil)
		}
		seen[f] = true
	}
	limit := defaultNewLimit
	if a.Limit > 0 {
		limit = min(int(a.Limit), maxNewLimit)
	}
	accounts, err := s.accountsFor(ctx, a.AccountID)
	if err != nil {
		return result(nil, "", err, nil)
	}
	news := make([][]FolderNews, len(accounts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, newMailAccountsAt)
	for i, acct := range accounts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			news[i] = s.accountNews(ctx, p, acct, folders, limit)
		})
	}
	wg.Wait()
	out := NewMailResult{Folders: []FolderNews{}, Notice: untrustedNotice}
	var b strings.Builder
	f := newFrame()
	for _, list := range news {
		for _, n := range list {
			out.Folders = append(out.Folders, n)
			writeNews(&b, f, n)
		}
	}
	return mcplib.NewToolResultStructured(out, b.String()), nil
}

// accountsFor returns the account id names, or every account of the
// caller when id is empty, opened for one call.
func (s *Server) accountsFor(ctx context.Context, id string) ([]*mail.Account, error) {
	if id != "" {
		acct, err := s.account(ctx, id)
		if err != nil {
			return nil, err
		}
		return []*mail.Account{acct}, nil
	}
	p, _ := oauth.PrincipalFrom(ctx)
	list, err := s.o.Store.ListAccounts(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fail("No mail account is connected. Ask the user to add one in the imap-mcp web UI (Accounts).")
	}
	out := make([]*mail.Account, 0, len(list))
	for _, a := range list {
		acct, err := account.Open(a, s.o.Secrets, s.o.OAuth)
		if err != nil {
			return nil, err
		}
		out = append(out, acct)
	}
	return out, nil
}

// accountNews looks at folders of one account and moves the client's
// marks to what it saw. A folder that fails is reported, not fatal.
func (s *Server) accountNews(ctx context.Context, p oauth.Principal, acct *mail.Account, folders []string, limit int) []FolderNews {
	out := make([]FolderNews, 0, len(folders))
	marks, err := s.o.Store.Watermarks(ctx, p.UserID, p.GrantID, acct.ID)
	if err != nil {
		s.o.Logger.Warn("list_new_messages: read marks", "account", acct.ID, "err", err)
		for _, f := range folders {
			out = append(out, FolderNews{AccountID: acct.ID, Account: acct.Email, Folder: f, Status: "error", Messages: []MessageSummary{},
				Error: "The marks of this client could not be read; try again."})
		}
		return out
	}
	var keep []store.Watermark
	for _, folder := range folders {
		n := FolderNews{AccountID: acct.ID, Account: capRunes(acct.Email, maxAddressRunes), Folder: folder, Messages: []MessageSummary{}}
		w := marks[folder]
		got, err := s.o.Mail.NewMessages(ctx, acct, folder, mail.Mark{UIDValidity: uint32(w.UIDValidity), UIDNext: uint32(w.UIDNext), ModSeq: uint64(w.ModSeq)}, limit)
		if err != nil {
			msg, ok := errorText(err, acct)
			if !ok {
				s.o.Logger.Warn("list_new_messages", "account", acct.ID, "err", err)
				msg = "This folder could not be read; try again."
			}
			n.Status, n.Error = "error", msg
			out = append(out, n)
			continue
		}
		switch {
		case got.First:
			n.Status = "first_look"
		case got.Reset:
			n.Status = "reset"
		default:
			n.Status = "since_last_look"
		}
		n.NewTotal, n.FlagChangesTotal = got.Total, got.ChangedTotal
		var lines strings.Builder
		for _, m := range got.Messages {
			n.Messages = append(n.Messages, summary(m))
			writeSummaryLine(&lines, m)
		}
		n.newLines = lines.String()
		lines.Reset()
		for _, m := range got.Changed {
			n.FlagChanges = append(n.FlagChanges, summary(m))
			writeSummaryLine(&lines, m)
		}
		n.changedLines = lines.String()
		out = append(out, n)
		keep = append(keep, store.Watermark{Folder: folder, UIDValidity: int64(got.Mark.UIDValidity), UIDNext: int64(got.Mark.UIDNext), ModSeq: int64(got.Mark.ModSeq)})
	}
	if err := s.o.Store.SaveWatermarks(ctx, p.UserID, p.GrantID, acct.ID, keep); err != nil {
		s.o.Logger.Warn("list_new_messages: save marks", "account", acct.ID, "err", err)
	}
	return out
}

// writeNews writes one folder's news as text.
func writeNews(b *strings.Builder, f *frame, n FolderNews) {
	where := fmt.Sprintf("%s %s", n.Account, capBytes(n.Folder, 100))
	switch n.Status {
	case "error":
		fmt.Fprintf(b, "%s: %s\n", where, n.Error)
		return
	case "first_look":
		fmt.Fprintf(b, "%s: first look, so there is no earlier mark; its %d most recent message(s), newest first. "+
			"From now on this reports what arrives after this call.\n", where, len(n.Messages))
	case "reset":
		fmt.Fprintf(b, "%s: the server rebuilt this folder (its UIDVALIDITY changed), so the mark started over; "+
			"its %d most recent message(s), newest first.\n", where, len(n.Messages))
	default:
		if n.NewTotal == 0 {
			fmt.Fprintf(b, "%s: nothing new since the last look.\n", where)
		} else {
			fmt.Fprintf(b, "%s: %d new since the last look; showing %d, newest first.\n", where, n.NewTotal, len(n.Messages))
		}
	}
	if n.newLines != "" {
		b.WriteString(f.wrap("email-list", "", n.newLines))
	}
	if n.NewTotal > len(n.Messages) {
		fmt.Fprintf(b, "%d older new message(s) are not shown: list_messages on %s shows them.\n", n.NewTotal-len(n.Messages), capBytes(n.Folder, 100))
	}
	if n.FlagChangesTotal > 0 {
		fmt.Fprintf(b, "Flags changed elsewhere on %d older message(s); showing %d:\n", n.FlagChangesTotal, len(n.FlagChanges))
		b.WriteString(f.wrap("email-list", "", n.changedLines))
	}
}
