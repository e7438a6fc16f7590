package validate

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one built Kubernetes object, decoded into its k8s.io/api type.
type Object struct {
	Kind, Name string
	Obj        runtime.Object
}

var (
	scheme = runtime.NewScheme()
	// strict rejects unknown and duplicate fields, as `kubectl apply
	// --validate=strict` and the API server's strict field validation do.
	strict = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, rbacv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

// Kustomize builds the kustomization in dir as `kubectl apply -k` would
// (kustomize's defaults, load restrictions on) and decodes every object
// strictly into its typed API object. An object of a kind outside the
// scheme (core, apps, policy, networking, rbac, autoscaling) is an error.
func Kustomize(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []Object
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		obj, err := DecodeStrict(y)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		out = append(out, Object{Kind: r.GetKind(), Name: r.GetName(), Obj: obj})
	}
	return out, nil
}

// DecodeStrict decodes one YAML or JSON object into its typed API object,
// failing on unknown fields, duplicate fields and unknown kinds.
func DecodeStrict(data []byte) (runtime.Object, error) {
	obj, _, err := strict.Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	return obj, nil
}
