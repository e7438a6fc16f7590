package merkle

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// CheckpointStream is the stream the ledger appends its checkpoints to, as
// subsidy.v1.AuditCheckpoint events.
const CheckpointStream = "audit-checkpoints"

// DefaultOrigin is the origin (and key name) keygen uses by default.
const DefaultOrigin = "cqhrss.gov.cn/subsidyledger"

// Checkpoint is a statement of the log's tree: its size and root hash,
// under the log's origin. Note holds the signed note it came from (empty
// for a checkpoint computed locally).
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Note   []byte
}

// Body returns the C2SP tlog-checkpoint body: origin, size and base64 root,
// each on a line of its own.
func (c Checkpoint) Body() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

func (c Checkpoint) String() string {
	return fmt.Sprintf("%s size %d root %s", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseBody parses a checkpoint body. Extension lines after the root are
// allowed (C2SP) and ignored.
func ParseBody(text string) (Checkpoint, error) {
	bad := func(why string) (Checkpoint, error) {
		return Checkpoint{}, errorf(CodeInvalidArgument, "parse checkpoint", "%s", why)
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 || !strings.HasSuffix(text, "\n") {
		return bad("want origin, tree size and root hash, each on a line ending in a newline")
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	if origin == "" {
		return bad("empty origin line")
	}
	size, err := strconv.ParseInt(strings.TrimSuffix(lines[1], "\n"), 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != strings.TrimSuffix(lines[1], "\n") {
		return bad(fmt.Sprintf("tree size %q is not a decimal number", strings.TrimSuffix(lines[1], "\n")))
	}
	root, err := tlog.ParseHash(strings.TrimSuffix(lines[2], "\n"))
	if err != nil {
		return bad(fmt.Sprintf("root hash %q is not 32 bytes in base64", strings.TrimSuffix(lines[2], "\n")))
	}
	return Checkpoint{Origin: origin, Size: size, Root: root}, nil
}

// GenerateKey returns a new Ed25519 signer key and its verifier key, in the
// note key text forms ("PRIVATE+KEY+<name>+<hash>+<key>" and
// "<name>+<hash>+<key>"). The name is the log's origin (DefaultOrigin if
// empty). rand nil means crypto/rand.
func GenerateKey(rnd io.Reader, name string) (signerKey, verifierKey string, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if name == "" {
		name = DefaultOrigin
	}
	skey, vkey, err := note.GenerateKey(rnd, name)
	if err != nil {
		return "", "", &Error{Code: CodeInvalidArgument, Op: "generate key", Detail: fmt.Sprintf("key name %q", name), Err: err}
	}
	return skey, vkey, nil
}

// Signer signs checkpoints with the log's Ed25519 key.
type Signer struct {
	signer note.Signer
	vkey   string
}

// NewSigner returns a Signer for a signer key as GenerateKey writes it
// (surrounding white space is ignored, so a key file may end in a newline).
// The key's name is the origin of the checkpoints it signs.
func NewSigner(signerKey string) (*Signer, error) {
	skey := strings.TrimSpace(signerKey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Op: "signer key", Detail: "want PRIVATE+KEY+<name>+<hash>+<key> as ledgerctl keygen writes it", Err: err}
	}
	// Derive the verifier key: the fifth field is base64(algorithm || seed)
	// (base64 may hold '+' itself).
	fields := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(fields[len(fields)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errorf(CodeInvalidArgument, "signer key", "not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Op: "signer key", Err: err}
	}
	return &Signer{signer: s, vkey: vkey}, nil
}

// Origin returns the key name, the origin line of the checkpoints.
func (s *Signer) Origin() string { return s.signer.Name() }

// VerifierKey returns the verifier key text supervisors hold.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns the signed checkpoint of a tree of size with root, issued at
// now, as the message the ledger appends and publishes.
func (s *Signer) Sign(size int64, root tlog.Hash, now time.Time) (*subsidyv1.AuditCheckpoint, error) {
	if size < 0 {
		return nil, errorf(CodeInvalidArgument, "sign", "tree size %d", size)
	}
	c := Checkpoint{Origin: s.Origin(), Size: size, Root: root}
	msg, err := note.Sign(&note.Note{Text: c.Body()}, s.signer)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Op: "sign", Err: err}
	}
	return &subsidyv1.AuditCheckpoint{
		TreeSize:   uint64(size),
		RootHash:   root[:],
		SignedNote: string(msg),
		IssuedAt:   timestamppb.New(now),
		KeyName:    s.Origin(),
	}, nil
}

// Verifier checks checkpoints signed with one log's key.
type Verifier struct {
	v    note.Verifier
	vkey string
}

// NewVerifier returns a Verifier for a verifier key ("<name>+<hash>+<key>",
// as ledgerctl keygen writes it; surrounding white space is ignored).
func NewVerifier(verifierKey string) (*Verifier, error) {
	vkey := strings.TrimSpace(verifierKey)
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Op: "verifier key", Detail: "want <name>+<hash>+<key> as ledgerctl keygen writes it", Err: err}
	}
	return &Verifier{v: v, vkey: vkey}, nil
}

// Origin returns the key name: the origin the checkpoints must carry.
func (v *Verifier) Origin() string { return v.v.Name() }

// Key returns the verifier key text.
func (v *Verifier) Key() string { return v.vkey }

// Open verifies a signed checkpoint note and parses it. The note must carry
// a valid signature by this key (other signatures are ignored) and name
// this key's origin.
func (v *Verifier) Open(signedNote []byte) (Checkpoint, error) {
	n, err := note.Open(signedNote, note.VerifierList(v.v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		detail := "the checkpoint is not a signed note"
		switch {
		case errors.As(err, &unverified):
			detail = fmt.Sprintf("the checkpoint is not signed by %s", v.Origin())
		case errors.As(err, &invalid):
			detail = fmt.Sprintf("the checkpoint's signature by %s does not verify: it was altered or forged", v.Origin())
		}
		return Checkpoint{}, &Error{Code: CodeBadSignature, Op: "open checkpoint", Detail: detail, Err: err}
	}
	c, err := ParseBody(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Origin() {
		return Checkpoint{}, errorf(CodeBadSignature, "open checkpoint", "origin %q is not the key's log %q", c.Origin, v.Origin())
	}
	c.Note = append([]byte(nil), signedNote...)
	return c, nil
}

// OpenMessage verifies an AuditCheckpoint message: its signed note, and
// that its tree_size and root_hash fields say what the note says.
func (v *Verifier) OpenMessage(m *subsidyv1.AuditCheckpoint) (Checkpoint, error) {
	c, err := v.Open([]byte(m.GetSignedNote()))
	if err != nil {
		return c, err
	}
	if uint64(c.Size) != m.GetTreeSize() || string(c.Root[:]) != string(m.GetRootHash()) {
		return Checkpoint{}, errorf(CodeBadSignature, "open checkpoint", "tree_size %d and root_hash differ from the signed note (size %d)", m.GetTreeSize(), c.Size)
	}
	return c, nil
}

// CheckpointEvent returns the event the ledger appends to CheckpointStream
// for a signed checkpoint (source "ledger"). Its id is derived from the
// origin and tree size, so appending the same checkpoint twice stores it
// once.
func CheckpointEvent(m *subsidyv1.AuditCheckpoint) (events.EventData, error) {
	id := events.DeriveID("audit-checkpoint", m.GetKeyName(), strconv.FormatUint(m.GetTreeSize(), 10))
	env := &subsidyv1.Envelope{OccurredAt: m.GetIssuedAt(), RecordedAt: m.GetIssuedAt(), Source: "ledger"}
	return codec.Encode(id, CheckpointStream, env, m)
}
