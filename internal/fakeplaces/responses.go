package fakeplaces

import _ "embed"

// legacyNearbyBody is a Nearby Search (legacy) answer around UCLA, formatted
// exactly as Google formats it: three-space indentation, a space before each
// colon, HTML in strings escaped as \u003c, and a few blank lines.
//
//go:embed responses/legacy_nearby.json
var legacyNearbyBody []byte

// newNearbyBody is a Places API (New) Nearby Search answer around UCLA with
// every field, formatted as Google formats it: two-space indentation.
//
//go:embed responses/new_nearby.json
var newNearbyBody []byte
