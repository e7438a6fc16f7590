// Package merkle is the ledger's tamper evidence: an RFC 6962 Merkle tree
// over the global log, signed checkpoints of it, and inclusion and
// consistency proofs that a supervisor checks offline with only the log's
// public (verifier) key. The tree arithmetic, hashing and proofs are those
// of golang.org/x/mod/sumdb/tlog; checkpoints are C2SP signed notes
// (golang.org/x/mod/sumdb/note, Ed25519).
//
// # Leaves
//
// Leaf i of the tree is the i-th event of the global log (0-based, in
// position order; positions may be sparse, leaf indexes are dense). Its leaf
// hash is the RFC 6962 record hash, SHA-256(0x00 || leaf data), of
//
//	"subsidy-ledger/merkle-leaf/v1\x00" ||
//	position (uint64) || len(stream) (uint64) || stream ||
//	revision (uint64) || committed (int64 Unix nanoseconds, UTC) ||
//	hash (32 bytes: the event's hash link, events.LinkHash)
//
// with integers big-endian. The hash link already covers the event's id,
// type, envelope, payload, stream, revision and the previous event of its
// stream; the leaf adds what the link does not: the event's place in the
// global log and its commit time. Changing, removing, inserting or
// reordering any event, or truncating the log, therefore changes the root of
// every tree that includes it, even if whoever did it recomputed the hash
// links.
//
// # Sealing
//
// A Sealer follows the global log with a catch-up subscription
// (events.Store.Subscribe) and appends each event's leaf to the tree. It
// keeps the tree's stored hashes (tlog.StoredHashes) in a bbolt file of its
// own, written in the same transaction as the sealed position, so after a
// crash it resumes exactly where its last commit left off. One design serves
// every backend (positions may be sparse: the file maps runs of positions to
// leaf indexes); the store's own file is never touched. The Sealer seals
// only events that match their own hash link, and at start checks that the
// store still holds the last event it sealed, as sealed.
//
// The window between append and seal: an event is durable in the store
// before it is sealed. The Sealer commits whatever the subscription has
// delivered, up to SealerOptions.MaxBatch events, in one bbolt transaction
// (one fdatasync), so under load the window is one subscription hop plus
// one sealer commit (a few milliseconds on a local disk; Stats.Delay and
// the ledgerbench "audit" rows measure it), plus SealerOptions.Linger when
// one is set: once caught up, the sealer reads the log at most that often,
// so that commits gather into one transaction. During the window an event is in
// the log but in no checkpoint; it cannot be proved yet (ErrNotSealed). A
// tamperer who rewrites the store file inside the window is caught by the
// Sealer's start-up check and by hash links, not by a checkpoint: checkpoints
// protect what they cover. WaitSealed waits out the window (on-demand
// checkpoints use it).
//
// # Checkpoints
//
// A checkpoint is the C2SP tlog-checkpoint body
//
//	<origin>\n<tree size, decimal>\n<root hash, base64>\n
//
// signed as a note by the log's Ed25519 key, whose name is the origin. The
// ledger appends each checkpoint to the log (stream CheckpointStream, type
// subsidy.v1.AuditCheckpoint), so later trees commit to earlier checkpoints,
// and publishes it. Supervisors keep the checkpoints they have seen; any
// later log must be consistent with them.
//
// # Checking
//
// VerifyLog walks a store: every hash link (events.Verify), the Merkle tree
// recomputed from scratch, and its root at the size of every trusted
// checkpoint and of every checkpoint in the log signed by the given key.
// On a store whose positions have no gaps (DenseLog) a skipped position is
// an event removed; on one with a stream index (IndexChecker) the index
// must agree with the heads the walk computed, since reads and appends
// trust it. A walk that matched no checkpoint is UNANCHORED, not OK: hash
// links alone do not show that the log was not rewritten with its hashes
// recomputed, cut short or rebuilt; only a checkpoint signed earlier does,
// and only for the events it covers (VerifyReport.AfterAnchor counts the
// others). CheckInclusion and CheckConsistency check proofs against signed
// checkpoints. None of them trusts the server.
package merkle
