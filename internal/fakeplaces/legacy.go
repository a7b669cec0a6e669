package fakeplaces

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Messages of Nearby Search (legacy) REQUEST_DENIED answers.
const (
	legacyMissingKeyMessage = "You must use an API key to authenticate each request to Google Maps Platform APIs. For additional information, please refer to http://g.co/dev/maps-no-account"
	legacyInvalidKeyMessage = "The provided API key is invalid. "
)

// legacyStatusMessages are the error_message values Google sends with
// non-OK statuses; statuses without one get none.
var legacyStatusMessages = map[string]string{
	"OVER_QUERY_LIMIT": "You have exceeded your daily request quota for this API. If you did not set a custom daily request quota, verify your project has an active billing account: http://g.co/dev/maps-no-account",
	"REQUEST_DENIED":   "This API project is not authorized to use this API.",
}

// serveLegacyNearby answers GET /maps/api/place/nearbysearch/json. Like
// Google, it answers HTTP 200 whatever the status.
func (s *Server) serveLegacyNearby(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeGoogleError(w, http.StatusMethodNotAllowed, "Method "+r.Method+" is not allowed.")
		return
	}
	q := r.URL.Query()
	switch key := q.Get("key"); {
	case key == "":
		writeBody(w, http.StatusOK, legacyStatusBody("REQUEST_DENIED", legacyMissingKeyMessage))
		return
	case key != APIKey:
		writeBody(w, http.StatusOK, legacyStatusBody("REQUEST_DENIED", legacyInvalidKeyMessage))
		return
	}
	if status := s.currentLegacyStatus(); status != "" {
		writeBody(w, http.StatusOK, legacyStatusBody(status, legacyStatusMessages[status]))
		return
	}
	if !validLocation(q.Get("location")) || !validLegacyRadius(q.Get("radius")) {
		writeBody(w, http.StatusOK, legacyStatusBody("INVALID_REQUEST", ""))
		return
	}
	writeBody(w, http.StatusOK, legacyNearbyBody)
}

// validLocation reports whether s is a "lat,lng" pair in degrees.
func validLocation(s string) bool {
	latText, lngText, ok := strings.Cut(s, ",")
	if !ok {
		return false
	}
	lat, err := strconv.ParseFloat(strings.TrimSpace(latText), 64)
	if err != nil || math.IsNaN(lat) || math.Abs(lat) > 90 {
		return false
	}
	lng, err := strconv.ParseFloat(strings.TrimSpace(lngText), 64)
	return err == nil && !math.IsNaN(lng) && math.Abs(lng) <= 180
}

// validLegacyRadius reports whether s is a radius Nearby Search (legacy)
// accepts: more than 0 and at most 50000 metres.
func validLegacyRadius(s string) bool {
	r, err := strconv.ParseFloat(s, 64)
	return err == nil && r > 0 && r <= 50000
}

// legacyStatusBody returns a Nearby Search (legacy) answer without results,
// formatted as Google formats it.
func legacyStatusBody(status, message string) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	if message != "" {
		b.WriteString(`   "error_message" : `)
		b.Write(legacyString(message))
		b.WriteString(",\n")
	}
	b.WriteString(`   "html_attributions" : [],` + "\n")
	b.WriteString(`   "results" : [],` + "\n")
	b.WriteString(`   "status" : `)
	b.Write(legacyString(status))
	b.WriteString("\n}\n")
	return b.Bytes()
}

// legacyString encodes s as a JSON string with HTML characters escaped, as
// Google escapes them.
func legacyString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
