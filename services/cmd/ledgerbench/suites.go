package main

// suites lists what ledgerbench measures, in table order. Add an area's
// suite here and keep its code in a file of its own.
var suites = []suite{
	{"store", storeSuite},
	{"ingest", ingestSuite},
	{"audit", auditSuite},
	{"projections", projectionsSuite},
}
