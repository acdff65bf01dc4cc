package kubetrail

import (
	"errors"
	"fmt"
)

// Error codes. Every error that crosses a package boundary towards a user is
// classified by one of these; the HTTP layer maps them to statuses in one place.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	ECONFLICT     = "conflict"
	ETOOLARGE     = "too_large"
	EINTERNAL     = "internal"
)

// Error is kubetrail's domain error: a code for machines and a message for people.
type Error struct {
	Code    string
	Message string
	// Where locates the problem inside the input, when there is one place to point at:
	// "line 3", "column 14", "events[2].proc.pid".
	Where string
}

func (e *Error) Error() string {
	if e.Where != "" {
		return fmt.Sprintf("%s: %s", e.Where, e.Message)
	}
	return e.Message
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorAt returns an *Error that says where in the input the problem is.
func ErrorAt(code, where, format string, args ...any) *Error {
	return &Error{Code: code, Where: where, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any
// other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err. Internal errors are not
// described to callers beyond a generic sentence; they are logged instead.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}
