package natsbus

// CreateOrUpdate is createOrUpdate, for the tests.
var CreateOrUpdate = createOrUpdate
