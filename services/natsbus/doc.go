// Package natsbus is the ledger's NATS adapter: the embedded NATS server with
// JetStream, the JetStream streams and consumer the ledger uses, the subject
// names, and atomic batch publishing.
//
// Subjects (with the default prefix "subsidy"):
//
//	subsidy.in.<source>.<fact>         inbound facts (stream SUBSIDY_IN)
//	subsidy.outcome.<source>.<fact>    intake outcomes (stream SUBSIDY_OUTCOMES)
//	subsidy.feed.<category>.<Type>     committed events, in position order (stream SUBSIDY_FEED)
//
// With users the streams live in NATS accounts of their own (LedgerAccount,
// FeedAccount), each service and the reporting users in others
// (accounts.go).
package natsbus
