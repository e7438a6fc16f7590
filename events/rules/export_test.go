package rules

// SetDirectLayout sets whether a restore reads the applied ids and natural
// keys straight into memory (directLayout), and returns the setting before.
func SetDirectLayout(on bool) bool {
	old := directLayout
	directLayout = on
	return old
}
