package projections

// Unmarshal is the build's payload decoder, for the tests.
var Unmarshal = unmarshal
