package rules

// Freeze moves everything the World's hash indexes hold into their frozen
// parts, as a restored World has it, so that two Worlds with the same
// content compare equal with reflect.DeepEqual however they were built.
func Freeze(w *World) {
	w.applied.freeze()
	w.natural.freeze()
}
