package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/bugtracker/bugtracker/platform/problem"
)

// DecodeJSON strictly decodes the request body into dst: malformed JSON, trailing data
// and unknown fields are 400 (no mass assignment); a value of the wrong JSON type is 422
// naming the field. Rules on values are the domain's to check afterwards.
func DecodeJSON(c *fiber.Ctx, dst any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.BadRequest("the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.BadRequest("the request body must hold a single JSON object")
	}
	return nil
}

func decodeProblem(err error) *problem.Problem {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return problem.BadRequest(fmt.Sprintf("malformed JSON at offset %d", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.BadRequest("malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return problem.BadRequest("the request body must be a JSON object")
		}
		return problem.Validation(problem.FieldError{
			Field: typ.Field, Message: "must be a JSON " + jsonKind(typ.Type.Kind().String()),
		})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return problem.BadRequest("unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return problem.BadRequest("malformed JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	default:
		return "number"
	}
}
