// Package validate checks the deployment files offline, without a Docker
// engine or a cluster: its tests load deployments/compose.yaml with the
// compose-spec loader, build the kustomize base and overlays and decode every
// object strictly into its k8s.io/api type, parse the Grafana dashboards with
// Grafana's own schema types and the Prometheus rules with Prometheus's rule
// parser, check that every metric name they query is one ledgerd exports
// (read from the Go sources), check the NATS configuration with nats-server's
// own option parser (and run it in-process: two servers from it form a
// cluster, a third without the route password is refused) and the
// Dockerfile with BuildKit's parser.
//
// It is a module of its own, outside go.work: the loaders pull in many
// dependencies that the workspace modules must not share. Run it with
//
//	make check-deployments
//
// (which also runs promtool on the Prometheus files).
package validate
