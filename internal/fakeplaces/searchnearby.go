package fakeplaces

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
)

// Messages of Places API (New) error answers.
const (
	invalidKeyMessage       = "API key not valid. Please pass a valid API key."
	missingFieldMaskMessage = "FieldMask is a required parameter. See https://cloud.google.com/apis/docs/system-parameters on how to provide it. As an example, you can set the header 'X-Goog-FieldMask' to 'displayName' in order to request the display name of the place."
)

// searchNearbyRequest is the body of a Nearby Search (New) request. Unknown
// fields are rejected, as Google rejects them.
type searchNearbyRequest struct {
	IncludedTypes        []string             `json:"includedTypes"`
	ExcludedTypes        []string             `json:"excludedTypes"`
	IncludedPrimaryTypes []string             `json:"includedPrimaryTypes"`
	ExcludedPrimaryTypes []string             `json:"excludedPrimaryTypes"`
	MaxResultCount       *int                 `json:"maxResultCount"`
	LocationRestriction  *locationRestriction `json:"locationRestriction"`
	RankPreference       string               `json:"rankPreference"`
	LanguageCode         string               `json:"languageCode"`
	RegionCode           string               `json:"regionCode"`
	RoutingParameters    json.RawMessage      `json:"routingParameters"`
}

type locationRestriction struct {
	Circle *circle `json:"circle"`
}

type circle struct {
	Center *latLng  `json:"center"`
	Radius *float64 `json:"radius"`
}

type latLng struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

// serveSearchNearby answers POST /v1/places:searchNearby with at most
// maxResultCount canned places, each with the fields the field mask asks
// for, or {} when the circle's radius is less than a metre.
func (s *Server) serveSearchNearby(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		writeGoogleError(w, http.StatusNotFound, "Method not found.")
		return
	}
	key := r.Header.Get("X-Goog-Api-Key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if key != APIKey { // a missing key included
		writeGoogleError(w, http.StatusBadRequest, invalidKeyMessage, errorInfo{
			Type:     "type.googleapis.com/google.rpc.ErrorInfo",
			Reason:   "API_KEY_INVALID",
			Domain:   "googleapis.com",
			Metadata: map[string]string{"service": "places.googleapis.com"},
		})
		return
	}

	mask := r.Header.Get("X-Goog-FieldMask")
	if mask == "" {
		mask = r.URL.Query().Get("fields")
	}
	if mask == "" {
		mask = r.URL.Query().Get("$fields")
	}
	if strings.TrimSpace(mask) == "" {
		writeGoogleError(w, http.StatusBadRequest, missingFieldMaskMessage)
		return
	}
	fields, v := parseFieldMask(mask)
	if v != nil {
		writeGoogleError(w, http.StatusBadRequest, v.message)
		return
	}
	req, v := decodeSearchNearby(body)
	if v != nil {
		writeGoogleError(w, http.StatusBadRequest, v.message, badRequest{
			Type:            "type.googleapis.com/google.rpc.BadRequest",
			FieldViolations: []fieldViolation{{Field: v.field, Description: v.message}},
		})
		return
	}
	if *req.LocationRestriction.Circle.Radius < 1 {
		writeBody(w, http.StatusOK, []byte("{}\n"))
		return
	}

	places, err := cannedPlaces()
	if err != nil {
		writeGoogleError(w, http.StatusInternalServerError, "Internal error encountered.")
		return
	}
	n := 20
	if req.MaxResultCount != nil {
		n = *req.MaxResultCount
	}
	out, err := renderPlaces(places[:min(n, len(places))], fields)
	if err != nil {
		writeGoogleError(w, http.StatusInternalServerError, "Internal error encountered.")
		return
	}
	writeBody(w, http.StatusOK, out)
}

// violation is why a request is invalid: Google's message and, if it is
// about one, the request field.
type violation struct {
	field, message string
}

// unexpectedToken is Google's answer to a body that is not valid JSON.
var unexpectedToken = &violation{message: "Invalid JSON payload received. Unexpected token."}

// decodeSearchNearby decodes and checks a Nearby Search (New) request body.
func decodeSearchNearby(body []byte) (*searchNearbyRequest, *violation) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req searchNearbyRequest
	if err := dec.Decode(&req); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			msg := fmt.Sprintf("Invalid JSON payload received. Unknown name %s: Cannot find field.", name)
			return nil, &violation{message: msg}
		}
		return nil, unexpectedToken
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, unexpectedToken
	}

	lr := req.LocationRestriction
	switch {
	case lr == nil || lr.Circle == nil:
		return nil, &violation{"location_restriction", "location_restriction is required."}
	case lr.Circle.Center == nil || lr.Circle.Center.Latitude == nil || lr.Circle.Center.Longitude == nil:
		return nil, &violation{"location_restriction.circle.center", "location_restriction.circle.center is required."}
	case math.Abs(*lr.Circle.Center.Latitude) > 90 || math.Abs(*lr.Circle.Center.Longitude) > 180:
		return nil, &violation{"location_restriction.circle.center", "Invalid location_restriction.circle.center: latitude must be in [-90, 90] and longitude in [-180, 180]."}
	case lr.Circle.Radius == nil || *lr.Circle.Radius <= 0 || *lr.Circle.Radius > 50000:
		return nil, &violation{"location_restriction.circle.radius", "location_restriction.circle.radius must be greater than 0 and at most 50000."}
	case req.MaxResultCount != nil && (*req.MaxResultCount < 1 || *req.MaxResultCount > 20):
		return nil, &violation{"max_result_count", "max_result_count must be between 1 and 20, inclusive."}
	}
	return &req, nil
}

// fieldSet is the set of place fields a field mask asks for; nil means all.
type fieldSet map[string]bool

// parseFieldMask parses a comma-separated field mask such as
// "places.displayName,places.location" or "*".
func parseFieldMask(mask string) (fieldSet, *violation) {
	fields := fieldSet{}
	for _, path := range strings.Split(mask, ",") {
		path = strings.TrimSpace(path)
		switch {
		case path == "":
			continue
		case path == "*" || path == "places" || path == "places.*":
			return nil, nil
		case strings.HasPrefix(path, "places."):
			name, _, _ := strings.Cut(strings.TrimPrefix(path, "places."), ".")
			fields[name] = true
		default:
			msg := fmt.Sprintf("Error expanding 'fields' parameter. Cannot find matching fields for path '%s'.", path)
			return nil, &violation{message: msg}
		}
	}
	return fields, nil
}

// member is one key and value of a JSON object, in the object's order.
type member struct {
	key   string
	value json.RawMessage
}

var (
	cannedOnce   sync.Once
	cannedResult [][]member
	cannedErr    error
)

// cannedPlaces returns the places of newNearbyBody, each as its members in
// order.
func cannedPlaces() ([][]member, error) {
	cannedOnce.Do(func() {
		var doc struct {
			Places []json.RawMessage `json:"places"`
		}
		if cannedErr = json.Unmarshal(newNearbyBody, &doc); cannedErr != nil {
			return
		}
		for _, p := range doc.Places {
			ms, err := objectMembers(p)
			if err != nil {
				cannedErr = err
				return
			}
			cannedResult = append(cannedResult, ms)
		}
	})
	return cannedResult, cannedErr
}

// objectMembers splits a JSON object into its members, keeping their order
// and each value's bytes.
func objectMembers(obj []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("decoding place: not a JSON object")
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decoding place: %w", err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decoding place field %v: %w", tok, err)
		}
		ms = append(ms, member{key: tok.(string), value: v})
	}
	return ms, nil
}

// renderPlaces encodes places, keeping only the fields asked for, as
// {"places": [...]} indented with two spaces, as Google answers.
func renderPlaces(places [][]member, fields fieldSet) ([]byte, error) {
	var compact bytes.Buffer
	compact.WriteString(`{"places":[`)
	for i, p := range places {
		if i > 0 {
			compact.WriteByte(',')
		}
		compact.WriteByte('{')
		first := true
		for _, m := range p {
			if fields != nil && !fields[m.key] {
				continue
			}
			if !first {
				compact.WriteByte(',')
			}
			first = false
			key, _ := json.Marshal(m.key)
			compact.Write(key)
			compact.WriteByte(':')
			if err := json.Compact(&compact, m.value); err != nil {
				return nil, err
			}
		}
		compact.WriteByte('}')
	}
	compact.WriteString(`]}`)

	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
