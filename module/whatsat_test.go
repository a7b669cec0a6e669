package module

import (
	"encoding/json"
	"strings"
	"testing"
)

// legacyBody is shaped like Google's Nearby Search (legacy) answer: three
// spaces of indent, a space before each colon, and blank lines inside.
const legacyBody = `{
   "html_attributions" : [],
   "next_page_token" : "AW30NDx",

   "results" : [
      {
         "name" : "Royce Hall",
         "vicinity" : "10745 Dickson Plaza"
      },


      {
         "name" : "Powell Library",
         "vicinity" : "10740 Dickson Plaza"
      },
      {
         "name" : "Janss Steps"
      }
   ],
   "status" : "OK"
}


`

func TestAppendPlaces(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		bound int
		want  string
	}{
		{"bound above count keeps all", legacyBody, 20, `{
   "html_attributions" : [],
   "next_page_token" : "AW30NDx",
   "results" : [
      {
         "name" : "Royce Hall",
         "vicinity" : "10745 Dickson Plaza"
      },
      {
         "name" : "Powell Library",
         "vicinity" : "10740 Dickson Plaza"
      },
      {
         "name" : "Janss Steps"
      }
   ],
   "status" : "OK"
}`},
		{"bound cuts and keeps formatting", legacyBody, 1, `{
   "html_attributions" : [],
   "next_page_token" : "AW30NDx",
   "results" : [
      {
         "name" : "Royce Hall",
         "vicinity" : "10745 Dickson Plaza"
      }
   ],
   "status" : "OK"
}`},
		{"bound zero empties results", legacyBody, 0, `{
   "html_attributions" : [],
   "next_page_token" : "AW30NDx",
   "results" : [
   ],
   "status" : "OK"
}`},
		{"non-OK status passes through", "{\n   \"results\" : [],\n\n   \"status\" : \"ZERO_RESULTS\"\n}\n", 5,
			"{\n   \"results\" : [],\n   \"status\" : \"ZERO_RESULTS\"\n}"},
		{"no results key", `{"status":"REQUEST_DENIED","error_message":"x"}`, 3, `{"status":"REQUEST_DENIED","error_message":"x"}`},
		{"compact", `{"results":[{"a":1},{"b":[2,{"c":"]"}]},{"d":3}],"status":"OK"}`, 2, `{"results":[{"a":1},{"b":[2,{"c":"]"}]}],"status":"OK"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendPlaces([]byte("prefix:"), []byte(tt.body), tt.bound)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix:"+tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, "prefix:"+tt.want)
			}
			if !json.Valid(got[len("prefix:"):]) {
				t.Errorf("result is not valid JSON")
			}
		})
	}
}

func TestAppendPlacesRejectsNonObjects(t *testing.T) {
	for _, body := range []string{"", "[]", "<html>", `{"results": 3}`, `{"results": [1, `} {
		if _, err := appendPlaces(nil, []byte(body), 1); err == nil {
			t.Errorf("appendPlaces(%q) accepted it", body)
		}
	}
}

func FuzzAppendPlaces(f *testing.F) {
	f.Add(legacyBody, 2)
	f.Add(`{"results":[1,2,3]}`, 1)
	f.Fuzz(func(t *testing.T, body string, bound int) {
		bound = min(max(bound, 0), 20)
		got, err := appendPlaces(nil, []byte(body), bound)
		if err != nil {
			return
		}
		if strings.Contains(string(got), "\n\n") || strings.HasSuffix(string(got), "\n") {
			t.Fatalf("not folded: %q", got)
		}
		var doc struct {
			Results []json.RawMessage `json:"results"`
		}
		if json.Valid([]byte(body)) && json.Unmarshal(got, &doc) == nil && len(doc.Results) > bound {
			t.Fatalf("%d results kept for bound %d", len(doc.Results), bound)
		}
	})
}
