package validate

import (
	"context"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// LoadCompose loads a compose file the way `docker compose config` does:
// schema validation (unknown keys are errors outside x-* extensions),
// interpolation, normalisation and the consistency check (every network,
// volume, service in depends_on exists) all on. env is the whole
// environment interpolation sees, so that the result does not depend on the
// shell that runs the check; a .env beside the file is ignored for the same
// reason.
func LoadCompose(ctx context.Context, path string, env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)),
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}
