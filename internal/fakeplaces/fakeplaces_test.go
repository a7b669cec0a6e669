package fakeplaces

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// get sends a GET request to the fake and returns the status and body.
func get(t *testing.T, s *Server, path string, query url.Values) (int, []byte) {
	t.Helper()
	resp, err := http.Get(s.URL + path + "?" + query.Encode())
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return readResponse(t, resp)
}

// post sends a POST request with the given headers and body to the fake.
func post(t *testing.T, s *Server, path string, header map[string]string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return readResponse(t, resp)
}

func readResponse(t *testing.T, resp *http.Response) (int, []byte) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return resp.StatusCode, body
}

func legacyQuery(key string) url.Values {
	return url.Values{"location": {"34.068921,-118.4451811"}, "radius": {"1500"}, "key": {key}}
}

func TestLegacyNearbyAnswersInGoogleFormat(t *testing.T) {
	s := Start(t)
	code, body := get(t, s, legacyNearbyPath, legacyQuery(APIKey))
	if code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body:\n%s", code, body)
	}
	if !bytes.Equal(body, legacyNearbyBody) {
		t.Errorf("body is not the canned legacy answer")
	}
	for _, want := range []string{
		"{\n   \"html_attributions\" : [],\n   \"next_page_token\" : \"",
		"\n   \"results\" : [\n      {\n         \"geometry\" : {\n            \"location\" : {\n               \"lat\" : ",
		"\n      {\n         \"business_status\" : \"OPERATIONAL\",\n",
		"\"types\" : [ \"university\", \"point_of_interest\", \"establishment\" ],",
		"\\u003ca href=\\\"https://maps.google.com/maps/contrib/",
		"\n   \"status\" : \"OK\"\n}\n",
		",\n\n   \"results\"", // a blank line
		"},\n\n\n      {\n",   // two blank lines
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q", want)
		}
	}

	var doc struct {
		Results []struct {
			Name     string `json:"name"`
			Geometry struct {
				Location struct{ Lat, Lng float64 } `json:"location"`
			} `json:"geometry"`
			PlaceID string `json:"place_id"`
		} `json:"results"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("body is not valid JSON: %v", err)
	}
	if doc.Status != "OK" || len(doc.Results) < 5 {
		t.Fatalf("status %q with %d results, want OK with at least 5", doc.Status, len(doc.Results))
	}
	for _, r := range doc.Results {
		if r.Name == "" || r.PlaceID == "" || r.Geometry.Location.Lat == 0 || r.Geometry.Location.Lng == 0 {
			t.Errorf("incomplete result %+v", r)
		}
	}
}

func TestLegacyNearbyValidatesLikeGoogle(t *testing.T) {
	s := Start(t)
	tests := []struct {
		name        string
		query       url.Values
		wantStatus  string
		wantMessage string
	}{
		{"missing key", url.Values{"location": {"34,-118"}, "radius": {"10"}}, "REQUEST_DENIED", legacyMissingKeyMessage},
		{"wrong key", legacyQuery("AIza-not-the-key"), "REQUEST_DENIED", legacyInvalidKeyMessage},
		{"missing location", url.Values{"radius": {"10"}, "key": {APIKey}}, "INVALID_REQUEST", ""},
		{"bad location", url.Values{"location": {"north"}, "radius": {"10"}, "key": {APIKey}}, "INVALID_REQUEST", ""},
		{"latitude out of range", url.Values{"location": {"91,0"}, "radius": {"10"}, "key": {APIKey}}, "INVALID_REQUEST", ""},
		{"missing radius", url.Values{"location": {"34,-118"}, "key": {APIKey}}, "INVALID_REQUEST", ""},
		{"zero radius", url.Values{"location": {"34,-118"}, "radius": {"0"}, "key": {APIKey}}, "INVALID_REQUEST", ""},
		{"radius too large", url.Values{"location": {"34,-118"}, "radius": {"50001"}, "key": {APIKey}}, "INVALID_REQUEST", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, s, legacyNearbyPath, tt.query)
			if code != http.StatusOK {
				t.Fatalf("status = %d, want 200", code)
			}
			if !bytes.Equal(body, legacyStatusBody(tt.wantStatus, tt.wantMessage)) {
				t.Errorf("body =\n%s\nwant status %s with message %q", body, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

func TestLegacyNearbyRejectsOtherMethods(t *testing.T) {
	s := Start(t)
	code, _ := post(t, s, legacyNearbyPath+"?"+legacyQuery(APIKey).Encode(), nil, "")
	if code != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want 405", code)
	}
}

func TestSetLegacyStatus(t *testing.T) {
	s := Start(t)
	tests := []struct {
		status string
		want   string
	}{
		{"ZERO_RESULTS", "{\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"ZERO_RESULTS\"\n}\n"},
		{"OVER_QUERY_LIMIT", "{\n   \"error_message\" : \"You have exceeded your daily request quota for this API. If you did not set a custom daily request quota, verify your project has an active billing account: http://g.co/dev/maps-no-account\",\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"OVER_QUERY_LIMIT\"\n}\n"},
		{"UNKNOWN_ERROR", "{\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"UNKNOWN_ERROR\"\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			s.SetLegacyStatus(tt.status)
			code, body := get(t, s, legacyNearbyPath, legacyQuery(APIKey))
			if code != http.StatusOK || string(body) != tt.want {
				t.Errorf("got %d:\n%s\nwant 200:\n%s", code, body, tt.want)
			}
		})
	}

	// The key is checked first, as Google checks it.
	s.SetLegacyStatus("ZERO_RESULTS")
	if _, body := get(t, s, legacyNearbyPath, legacyQuery("wrong")); !bytes.Contains(body, []byte(`"REQUEST_DENIED"`)) {
		t.Errorf("wrong key with a legacy status set: got\n%s", body)
	}

	s.SetLegacyStatus("")
	if _, body := get(t, s, legacyNearbyPath, legacyQuery(APIKey)); !bytes.Equal(body, legacyNearbyBody) {
		t.Errorf("after SetLegacyStatus(\"\") the answer is not the normal one")
	}
}

// searchBody returns a Nearby Search (New) request body.
func searchBody(maxResults string, radius string) string {
	b := `{"locationRestriction": {"circle": {"center": {"latitude": 34.0689, "longitude": -118.4452}, "radius": ` + radius + `}}`
	if maxResults != "" {
		b += `, "maxResultCount": ` + maxResults
	}
	return b + "}"
}

func searchHeaders(key, mask string) map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["X-Goog-Api-Key"] = key
	}
	if mask != "" {
		h["X-Goog-FieldMask"] = mask
	}
	return h
}

// placeKeys returns the keys of each place of a Nearby Search (New) answer,
// in order.
func placeKeys(t *testing.T, body []byte) [][]string {
	t.Helper()
	var doc struct {
		Places []json.RawMessage `json:"places"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("answer is not valid JSON: %v\n%s", err, body)
	}
	var keys [][]string
	for _, p := range doc.Places {
		ms, err := objectMembers(p)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, m := range ms {
			ks = append(ks, m.key)
		}
		keys = append(keys, ks)
	}
	return keys
}

func TestSearchNearby(t *testing.T) {
	s := Start(t)
	all, err := cannedPlaces()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		mask       string
		maxResults string
		wantPlaces int
		wantKeys   []string // nil: every field
	}{
		{"every field", "*", "3", 3, nil},
		{"default count", "*", "", len(all), nil},
		{"count above available", "places", "20", len(all), nil},
		{"one place", "places.*", "1", 1, nil},
		{"field mask", "places.displayName,places.location", "2", 2, []string{"location", "displayName"}},
		{"nested field mask", "places.displayName.text, places.id", "2", 2, []string{"id", "displayName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, s, searchNearbyPath, searchHeaders(APIKey, tt.mask), searchBody(tt.maxResults, "1500"))
			if code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body:\n%s", code, body)
			}
			if !bytes.HasPrefix(body, []byte("{\n  \"places\": [\n    {\n      \"")) || !bytes.HasSuffix(body, []byte("\n}\n")) {
				t.Errorf("answer is not indented with two spaces:\n%.200s", body)
			}
			keys := placeKeys(t, body)
			if len(keys) != tt.wantPlaces {
				t.Fatalf("got %d places, want %d", len(keys), tt.wantPlaces)
			}
			for i, ks := range keys {
				want := tt.wantKeys
				if want == nil {
					for _, m := range all[i] {
						want = append(want, m.key)
					}
				}
				if strings.Join(ks, ",") != strings.Join(want, ",") {
					t.Errorf("place %d has fields %v, want %v", i, ks, want)
				}
			}
		})
	}
}

func TestSearchNearbyKeepsGoogleEscapes(t *testing.T) {
	s := Start(t)
	_, body := post(t, s, searchNearbyPath, searchHeaders(APIKey, "*"), searchBody("1", "100"))
	for _, want := range []string{`\u0026g_mp=`, `\u003cspan class=\"street-address\"\u003e`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("answer lacks %s", want)
		}
	}
}

func TestSearchNearbyEmptyBelowOneMetre(t *testing.T) {
	s := Start(t)
	code, body := post(t, s, searchNearbyPath, searchHeaders(APIKey, "*"), searchBody("5", "0.5"))
	if code != http.StatusOK || string(body) != "{}\n" {
		t.Errorf("got %d %q, want 200 \"{}\\n\"", code, body)
	}
}

func TestSearchNearbyAcceptsKeyInQuery(t *testing.T) {
	s := Start(t)
	code, body := post(t, s, searchNearbyPath+"?key="+APIKey, searchHeaders("", "places.id"), searchBody("1", "10"))
	if code != http.StatusOK {
		t.Errorf("status = %d, want 200; body:\n%s", code, body)
	}
}

func TestSearchNearbyErrors(t *testing.T) {
	s := Start(t)
	tests := []struct {
		name        string
		method      string
		header      map[string]string
		body        string
		wantCode    int
		wantStatus  string
		wantMessage string
	}{
		{"missing key", "", searchHeaders("", "*"), searchBody("1", "10"), 400, "INVALID_ARGUMENT", invalidKeyMessage},
		{"wrong key", "", searchHeaders("AIza-wrong", "*"), searchBody("1", "10"), 400, "INVALID_ARGUMENT", invalidKeyMessage},
		{"missing field mask", "", searchHeaders(APIKey, ""), searchBody("1", "10"), 400, "INVALID_ARGUMENT", missingFieldMaskMessage},
		{"field mask without places", "", searchHeaders(APIKey, "displayName"), searchBody("1", "10"), 400, "INVALID_ARGUMENT", "Cannot find matching fields for path 'displayName'"},
		{"invalid JSON", "", searchHeaders(APIKey, "*"), `{"locationRestriction":`, 400, "INVALID_ARGUMENT", "Unexpected token"},
		{"trailing data", "", searchHeaders(APIKey, "*"), searchBody("1", "10") + "{}", 400, "INVALID_ARGUMENT", "Unexpected token"},
		{"unknown field", "", searchHeaders(APIKey, "*"), `{"maxResults": 3}`, 400, "INVALID_ARGUMENT", `Unknown name "maxResults"`},
		{"missing location restriction", "", searchHeaders(APIKey, "*"), `{"maxResultCount": 3}`, 400, "INVALID_ARGUMENT", "location_restriction is required"},
		{"missing center", "", searchHeaders(APIKey, "*"), `{"locationRestriction": {"circle": {"radius": 10}}}`, 400, "INVALID_ARGUMENT", "center is required"},
		{"zero radius", "", searchHeaders(APIKey, "*"), searchBody("1", "0"), 400, "INVALID_ARGUMENT", "radius must be greater than 0"},
		{"radius too large", "", searchHeaders(APIKey, "*"), searchBody("1", "50001"), 400, "INVALID_ARGUMENT", "radius must be greater than 0"},
		{"zero max results", "", searchHeaders(APIKey, "*"), searchBody("0", "10"), 400, "INVALID_ARGUMENT", "max_result_count"},
		{"too many max results", "", searchHeaders(APIKey, "*"), searchBody("21", "10"), 400, "INVALID_ARGUMENT", "max_result_count"},
		{"GET", http.MethodGet, searchHeaders(APIKey, "*"), "", 404, "NOT_FOUND", "Method not found."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, s.URL+searchNearbyPath, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			code, body := readResponse(t, resp)
			var e googleError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body is not Google's JSON: %v\n%s", err, body)
			}
			if code != tt.wantCode || e.Error.Code != tt.wantCode || e.Error.Status != tt.wantStatus || !strings.Contains(e.Error.Message, tt.wantMessage) {
				t.Errorf("got %d %+v, want %d %s containing %q", code, e.Error, tt.wantCode, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

// invalidKeyBody is Google's answer to a Places API (New) request without a
// valid API key.
const invalidKeyBody = `{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "places.googleapis.com"}}]}}`

func TestSearchNearbyInvalidKeyLikeGoogle(t *testing.T) {
	s := Start(t)
	var want bytes.Buffer
	if err := json.Indent(&want, []byte(invalidKeyBody), "", "  "); err != nil {
		t.Fatal(err)
	}
	want.WriteByte('\n')
	valid := searchBody("1", "10")
	tests := []struct {
		name   string
		path   string
		header map[string]string
		body   string
	}{
		{"missing key", searchNearbyPath, searchHeaders("", "*"), valid},
		{"wrong key", searchNearbyPath, searchHeaders("AIza-wrong", "*"), valid},
		{"wrong key in query", searchNearbyPath + "?key=AIza-wrong", searchHeaders("", "*"), valid},
		{"the key is checked before the field mask", searchNearbyPath, searchHeaders("AIza-wrong", ""), valid},
		{"the key is checked before the body", searchNearbyPath, searchHeaders("", "*"), `{"maxResults": 3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := post(t, s, tt.path, tt.header, tt.body)
			if code != http.StatusBadRequest || !bytes.Equal(got, want.Bytes()) {
				t.Errorf("got %d:\n%s\nwant 400:\n%s", code, got, want.Bytes())
			}
		})
	}
}

func TestSetFailure(t *testing.T) {
	s := Start(t)
	for _, status := range []int{http.StatusInternalServerError, http.StatusForbidden, http.StatusServiceUnavailable} {
		s.SetFailure(status)
		for _, path := range []string{legacyNearbyPath, searchNearbyPath, "/elsewhere"} {
			var code int
			var body []byte
			if path == searchNearbyPath {
				code, body = post(t, s, path, searchHeaders(APIKey, "*"), searchBody("1", "10"))
			} else {
				code, body = get(t, s, path, legacyQuery(APIKey))
			}
			var e googleError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s: error body is not Google's JSON: %v", path, err)
			}
			if code != status || e.Error.Code != status || e.Error.Status != rpcStatus(status) || e.Error.Message == "" {
				t.Errorf("%s with failure %d: got %d %+v", path, status, code, e.Error)
			}
		}
	}
	s.SetFailure(0)
	if code, _ := get(t, s, legacyNearbyPath, legacyQuery(APIKey)); code != http.StatusOK {
		t.Errorf("after SetFailure(0): status %d, want 200", code)
	}
}

func TestRequestsAndLastRequest(t *testing.T) {
	s := Start(t)
	if n := s.Requests(); n != 0 {
		t.Errorf("Requests() = %d before any request", n)
	}
	if r := s.LastRequest(); r.Method != "" || r.Body != nil {
		t.Errorf("LastRequest() = %+v before any request", r)
	}

	get(t, s, legacyNearbyPath, legacyQuery(APIKey))
	body := searchBody("2", "10")
	post(t, s, searchNearbyPath, searchHeaders(APIKey, "places.id"), body)
	if n := s.Requests(); n != 2 {
		t.Errorf("Requests() = %d, want 2", n)
	}

	r := s.LastRequest()
	if r.Method != http.MethodPost || r.Path != searchNearbyPath || string(r.Body) != body ||
		r.Header.Get("X-Goog-FieldMask") != "places.id" || len(r.Query) != 0 {
		t.Errorf("LastRequest() = %+v", r)
	}
	// The copy is the caller's.
	r.Body[0] = 'X'
	r.Header.Set("X-Goog-FieldMask", "changed")
	if again := s.LastRequest(); string(again.Body) != body || again.Header.Get("X-Goog-FieldMask") != "places.id" {
		t.Errorf("changing a LastRequest copy changed the recorded request")
	}

	s.SetFailure(http.StatusInternalServerError)
	get(t, s, legacyNearbyPath, legacyQuery(APIKey))
	if n, r := s.Requests(), s.LastRequest(); n != 3 || r.Query.Get("radius") != "1500" || r.Method != http.MethodGet {
		t.Errorf("failed requests are counted and recorded: got %d requests, last %+v", n, r)
	}
}
