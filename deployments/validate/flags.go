package validate

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
)

var flagName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// LedgerdFlags reads the flag names ledgerd defines from its configuration
// source (services/ledgerd/config.go): the string literal naming the flag in
// each call to a flag-defining function (fs.StringVar, fs.IntVar, ..., or the
// file's own helper str(&v, "name", default, usage)).
func LedgerdFlags(path string) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool)
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fn := typeName(call.Fun)
		isFlag := fn == "str" || strings.HasSuffix(fn, "Var") || fn == "String" || fn == "Int" || fn == "Bool" || fn == "Duration" || fn == "Func"
		if !isFlag {
			return true
		}
		for i, a := range call.Args {
			if i > 1 {
				break
			}
			if s, ok := stringLit(a); ok && flagName.MatchString(s) {
				out[s] = true
				break
			}
		}
		return true
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no flag definitions found", path)
	}
	return out, nil
}

// EnvFlag maps a LEDGER_* environment variable to its flag name
// (LEDGER_NATS_URL to nats-url), or "" for another variable.
func EnvFlag(env string) string {
	rest, ok := strings.CutPrefix(env, "LEDGER_")
	if !ok {
		return ""
	}
	return strings.ReplaceAll(strings.ToLower(rest), "_", "-")
}

// ArgFlags returns the flag names and values in a ledgerd command line
// (--name=value, --name value, -name value).
func ArgFlags(args []string) (map[string]string, error) {
	out := make(map[string]string)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("argument %q is not a flag (ledgerd takes none)", a)
		}
		name := strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			out[k] = v
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("flag %q has no value", a)
		}
		out[name] = args[i+1]
		i++
	}
	return out, nil
}
