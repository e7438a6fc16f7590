package validate

import (
	"context"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// scrapeCredentials is the credentials_file of the ledgerd job in a
// Prometheus configuration.
func scrapeCredentials(t *testing.T, file string) string {
	t.Helper()
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			Authorization struct {
				CredentialsFile string `json:"credentials_file"`
			} `json:"authorization"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(read(t, filepath.Join(deployments, "prometheus", file)), &prom); err != nil {
		t.Fatal(err)
	}
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "ledgerd" {
			return sc.Authorization.CredentialsFile
		}
	}
	t.Fatalf("%s: no ledgerd job", file)
	return ""
}

// TestScrapeToken: ledgerd serves /metrics only with a scrape token
// (--metrics-token-file), and Prometheus has the token where its ledgerd
// job reads it, in compose (a secret from LEDGERD_SCRAPE_TOKEN) and in
// Kubernetes (the Secret prometheus-scrape, created as the README says).
func TestScrapeToken(t *testing.T) {
	const tokens = "/etc/ledgerd/metrics-tokens"
	p := loadCompose(t)
	for _, n := range ledgerds {
		s := p.Services[n]
		if f := ledgerdFlags(t, "service "+n, s.Command, envMap(s.Environment)); f["metrics-token-file"] != tokens {
			t.Errorf("service %s: --metrics-token-file=%q; want %s", n, f["metrics-token-file"], tokens)
		}
	}
	cred := scrapeCredentials(t, "prometheus.yml")
	if cred == "" {
		t.Fatal("prometheus.yml: the ledgerd job sends no credentials")
	}
	i := slices.IndexFunc(p.Services["prometheus"].Secrets, func(s types.ServiceSecretConfig) bool { return s.Target == cred })
	if i < 0 {
		t.Errorf("compose: prometheus has no secret at %s (its ledgerd job's credentials_file)", cred)
	} else if src := p.Services["prometheus"].Secrets[i].Source; p.Secrets[src].Environment != "LEDGERD_SCRAPE_TOKEN" {
		t.Errorf("compose: secret %s comes from %+v; want the environment's LEDGERD_SCRAPE_TOKEN", src, p.Secrets[src])
	}
	if env := string(read(t, filepath.Join(deployments, "example.env"))); !strings.Contains(env, "\nLEDGERD_SCRAPE_TOKEN=") {
		t.Error("example.env does not list LEDGERD_SCRAPE_TOKEN")
	}
	// Without the token compose refuses to start (an empty secret would
	// have every scrape refused, silently).
	env := []string{"LEDGERD_CHECKPOINT_KEY=x", "LEDGERD_PERSON_KEY=x", "LEDGERD_VAULT_KEY=x", natsRoutePassword + "=x"}
	for _, v := range natsPasswords {
		env = append(env, v+"=x")
	}
	if _, err := LoadCompose(context.Background(), composeFile, env); err == nil || !strings.Contains(err.Error(), "LEDGERD_SCRAPE_TOKEN") {
		t.Errorf("compose.yaml loads without LEDGERD_SCRAPE_TOKEN (%v); it must refuse", err)
	}

	for _, dir := range kustomize {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkKubeScrape(t, dir, tokens) })
	}
}

// checkKubeScrape: in the Kubernetes shape of dir, ledgerd reads its
// scrape tokens from a Secret the README creates, and Prometheus its token.
func checkKubeScrape(t *testing.T, dir, tokens string) {
	objs, err := Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	kcred := scrapeCredentials(t, "prometheus.k8s.yml")
	doc := string(read(t, readme))
	found := map[string]bool{}
	for _, o := range objs {
		var ps corev1.PodSpec
		switch w := o.Obj.(type) {
		case *appsv1.StatefulSet:
			ps = w.Spec.Template.Spec
		case *appsv1.Deployment:
			ps = w.Spec.Template.Spec
		default:
			continue
		}
		secretAt := map[string]string{} // mount path -> Secret
		for _, c := range ps.Containers {
			for _, m := range c.VolumeMounts {
				for _, v := range ps.Volumes {
					if v.Name == m.Name && v.Secret != nil {
						secretAt[m.MountPath] = v.Secret.SecretName
					}
				}
			}
			switch o.Name {
			case "ledgerd":
				f := ledgerdFlags(t, "Deployment ledgerd", c.Args, nil)
				if f["metrics-token-file"] != tokens {
					t.Errorf("k8s ledgerd: --metrics-token-file=%q; want %s", f["metrics-token-file"], tokens)
				}
				sec := secretAt[path.Dir(tokens)]
				if sec == "" || !strings.Contains(doc, "create secret generic "+sec+" ") || !strings.Contains(doc, "--from-file="+path.Base(tokens)+"=") {
					t.Errorf("k8s ledgerd: %s is not a key of a Secret the README creates (Secret at %s: %q)", path.Base(tokens), path.Dir(tokens), sec)
				}
				found["ledgerd"] = true
			case "prometheus":
				sec := secretAt[path.Dir(kcred)]
				if sec == "" || !strings.Contains(doc, "create secret generic "+sec+" --from-literal="+path.Base(kcred)+"=") {
					t.Errorf("k8s prometheus: %s (its ledgerd job's credentials_file) is not a key of a Secret the README creates (Secret at %s: %q)", kcred, path.Dir(kcred), sec)
				}
				found["prometheus"] = true
			}
		}
	}
	if !found["ledgerd"] || !found["prometheus"] {
		t.Errorf("workloads checked: %v; want ledgerd and prometheus", found)
	}
}
