package fakeplaces

import (
	"encoding/json"
	"net/http"
)

// googleError is the error format of Google's JSON APIs, the Places API
// (New) among them.
type googleError struct {
	Error googleErrorBody `json:"error"`
}

type googleErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`
}

// errorInfo is a google.rpc.ErrorInfo error detail.
type errorInfo struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// badRequest is a google.rpc.BadRequest error detail.
type badRequest struct {
	Type            string           `json:"@type"`
	FieldViolations []fieldViolation `json:"fieldViolations"`
}

type fieldViolation struct {
	Field       string `json:"field,omitempty"`
	Description string `json:"description"`
}

// writeGoogleError answers with an error in Google's JSON format.
func writeGoogleError(w http.ResponseWriter, code int, message string, details ...any) {
	writeJSON(w, code, googleError{Error: googleErrorBody{
		Code:    code,
		Message: message,
		Status:  rpcStatus(code),
		Details: details,
	}})
}

// writeJSON answers with v indented with two spaces, as Google's JSON APIs
// answer.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, code, append(body, '\n'))
}

// writeBody answers with a JSON body.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// rpcStatus returns the google.rpc.Code name Google's APIs give with an
// HTTP status.
func rpcStatus(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	case http.StatusInternalServerError:
		return "INTERNAL"
	}
	return "UNKNOWN"
}

// failureMessage returns the message Google gives with an HTTP status.
func failureMessage(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "Request contains an invalid argument."
	case http.StatusUnauthorized:
		return "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
	case http.StatusForbidden:
		return "The caller does not have permission"
	case http.StatusNotFound:
		return "Requested entity was not found."
	case http.StatusTooManyRequests:
		return "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service 'places.googleapis.com'."
	case http.StatusInternalServerError:
		return "Internal error encountered."
	case http.StatusServiceUnavailable:
		return "The service is currently unavailable."
	case http.StatusGatewayTimeout:
		return "The request timed out. Please try again."
	}
	if text := http.StatusText(code); text != "" {
		return text + "."
	}
	return "Unknown error."
}
