package mail

import (
	"fmt"
	"slices"
	"testing"
)

func TestNewMessagesAcrossDeliveriesFlagsAndReset(t *testing.T) {
	e, rig := testEngine(t, Config{})
	acct := rigAccount(t, rig, "carol")
	ctx := testCtx(t)
	folder, seeded := seedFolder(t, rig, "carol", "New", 12)
	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	deliver := func(subject string) uint32 {
		t.Helper()
		uid, err := app.Append(folder, []byte(fmt.Sprintf("From: ann@example.org\r\nTo: carol@example.org\r\nSubject: %s\r\n"+
			"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s@example.org>\r\n\r\nnew\r\n", subject, subject)))
		if err != nil {
			t.Fatal(err)
		}
		return uid
	}

	first, err := e.NewMessages(ctx, acct, folder, Mark{}, 20)
	if err != nil {
		t.Fatal(err)
	}
	newest := seeded.Messages[len(seeded.Messages)-1]
	if !first.First || first.Reset || first.Total != 0 || len(first.Messages) != FirstLook || first.Messages[0].Subject != newest.Subject {
		t.Fatalf("first look = %+v", first)
	}
	if first.Mark.UIDValidity == 0 || first.Mark.UIDNext != first.Messages[0].UID+1 || !first.ChangesKnown || first.Mark.ModSeq == 0 {
		t.Fatalf("first mark = %+v (Dovecot has CONDSTORE)", first.Mark)
	}

	same, err := e.NewMessages(ctx, acct, folder, first.Mark, 20)
	if err != nil {
		t.Fatal(err)
	}
	if same.First || same.Total != 0 || len(same.Messages) != 0 || same.ChangedTotal != 0 || same.Mark != first.Mark {
		t.Fatalf("look without changes = %+v", same)
	}

	u1, u2, u3 := deliver("one"), deliver("two"), deliver("three")
	old := first.Messages[2].UID
	if err := e.SetFlags(ctx, acct, folder, []uint32{old}, []string{FlagFlagged}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := e.NewMessages(ctx, acct, folder, first.Mark, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Total != 3 || len(got.Messages) != 2 || got.Messages[0].UID != u3 || got.Messages[1].UID != u2 || got.Mark.UIDNext != u3+1 {
		t.Fatalf("after three deliveries (limit 2): total %d, messages %+v, mark %+v", got.Total, got.Messages, got.Mark)
	}
	if got.ChangedTotal != 1 || got.Changed[0].UID != old || !slices.Contains(got.Changed[0].Flags, FlagFlagged) || got.Mark.ModSeq <= first.Mark.ModSeq {
		t.Fatalf("flag change: %d %+v, modseq %d → %d", got.ChangedTotal, got.Changed, first.Mark.ModSeq, got.Mark.ModSeq)
	}
	_ = u1

	// The mark of the second look sees nothing more.
	again, err := e.NewMessages(ctx, acct, folder, got.Mark, 20)
	if err != nil {
		t.Fatal(err)
	}
	if again.Total != 0 || again.ChangedTotal != 0 {
		t.Fatalf("look after the mark moved: %+v", again)
	}

	// A recreated folder has a new UIDVALIDITY: the old mark is reset.
	if _, err := recreateFolder(t, e, rig, acct, "carol", folder).Append(folder, []byte("From: ann@example.org\r\nSubject: reborn\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	reset, err := e.NewMessages(ctx, acct, folder, got.Mark, 20)
	if err != nil {
		t.Fatal(err)
	}
	if !reset.Reset || reset.First || len(reset.Messages) != 1 || reset.Messages[0].Subject != "reborn" || reset.Mark.UIDValidity == got.Mark.UIDValidity {
		t.Fatalf("after recreating the folder: %+v", reset)
	}

	if _, err := e.NewMessages(ctx, acct, "No-such-folder-x", Mark{}, 5); KindOf(err) != KindNotFound {
		t.Fatalf("missing folder: %v (%v)", KindOf(err), err)
	}
}
