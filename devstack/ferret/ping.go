package ferret

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// opMsg is the MongoDB wire protocol OP_MSG operation code.
const opMsg = 2013

// maxReplySize bounds the size of a hello reply accepted by [Ping].
const maxReplySize = 16 << 20

// Ping connects to the MongoDB wire-protocol server at addr (host:port),
// sends a "hello" command as an OP_MSG and checks that the reply is a
// well-formed OP_MSG whose document has ok set to 1. It needs no driver, so
// scripts can tell a MongoDB-compatible server apart from any other program
// listening on the port. The whole exchange is bounded by ctx.
func Ping(ctx context.Context, addr string) error {
	var d net.Dialer

	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	defer conn.Close()

	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}

	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}

	if _, err := conn.Write(helloMessage(1)); err != nil {
		return fmt.Errorf("ping %s: send hello: %w", addr, err)
	}

	doc, err := readOpMsgReply(conn, 1)
	if err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}

	okValue, err := okField(doc)
	if err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}

	if okValue != 1 {
		return fmt.Errorf("ping %s: hello replied ok=%v", addr, okValue)
	}

	return nil
}

// helloMessage builds an OP_MSG carrying {hello: 1, $db: "admin"}.
func helloMessage(requestID int32) []byte {
	var doc []byte
	doc = binary.LittleEndian.AppendUint32(doc, 0) // length, patched below
	doc = append(doc, 0x10)                        // int32
	doc = append(doc, "hello\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, 1)
	doc = append(doc, 0x02) // string
	doc = append(doc, "$db\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, uint32(len("admin")+1))
	doc = append(doc, "admin\x00"...)
	doc = append(doc, 0x00)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))

	var msg []byte
	msg = binary.LittleEndian.AppendUint32(msg, 0) // length, patched below
	msg = binary.LittleEndian.AppendUint32(msg, uint32(requestID))
	msg = binary.LittleEndian.AppendUint32(msg, 0) // responseTo
	msg = binary.LittleEndian.AppendUint32(msg, opMsg)
	msg = binary.LittleEndian.AppendUint32(msg, 0) // flagBits
	msg = append(msg, 0x00)                        // section kind 0: body
	msg = append(msg, doc...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))

	return msg
}

// readOpMsgReply reads one message from r, checks that it is an OP_MSG
// answering requestID and returns its body document.
func readOpMsgReply(r io.Reader, requestID int32) ([]byte, error) {
	var header [16]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, fmt.Errorf("read reply header: %w", err)
	}

	size := int64(int32(binary.LittleEndian.Uint32(header[0:4])))
	responseTo := int32(binary.LittleEndian.Uint32(header[8:12]))
	opCode := int32(binary.LittleEndian.Uint32(header[12:16]))

	if size < 16+5+5 || size > maxReplySize {
		return nil, fmt.Errorf("reply has implausible length %d", size)
	}

	if opCode != opMsg {
		return nil, fmt.Errorf("reply has opcode %d, want OP_MSG (%d)", opCode, opMsg)
	}

	if responseTo != requestID {
		return nil, fmt.Errorf("reply answers request %d, want %d", responseTo, requestID)
	}

	body := make([]byte, size-16)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read reply body: %w", err)
	}

	// flagBits (4 bytes), then the kind-0 section holding the body document.
	if body[4] != 0 {
		return nil, fmt.Errorf("reply starts with section kind %d, want 0", body[4])
	}

	doc := body[5:]
	docLen := int(int32(binary.LittleEndian.Uint32(doc)))

	if docLen < 5 || docLen > len(doc) || doc[docLen-1] != 0 {
		return nil, errors.New("reply document is malformed")
	}

	return doc[:docLen], nil
}

// okField returns the numeric value of the top-level "ok" element of the
// BSON document doc.
func okField(doc []byte) (float64, error) {
	p := 4
	end := len(doc) - 1

	for p < end {
		typ := doc[p]
		p++

		nameEnd := p
		for nameEnd < end && doc[nameEnd] != 0 {
			nameEnd++
		}

		if nameEnd >= end {
			return 0, errors.New("reply document has an unterminated element name")
		}

		name := string(doc[p:nameEnd])
		p = nameEnd + 1

		if name == "ok" {
			return numberValue(typ, doc[p:end])
		}

		n, err := valueSize(typ, doc[p:end])
		if err != nil {
			return 0, err
		}

		p += n
	}

	return 0, errors.New(`reply document has no "ok" field`)
}

// numberValue decodes a BSON double, int32, int64 or boolean at the start
// of b.
func numberValue(typ byte, b []byte) (float64, error) {
	n, err := valueSize(typ, b)
	if err != nil {
		return 0, err
	}

	switch typ {
	case 0x01:
		return math.Float64frombits(binary.LittleEndian.Uint64(b[:n])), nil
	case 0x08:
		if b[0] != 0 {
			return 1, nil
		}

		return 0, nil
	case 0x10:
		return float64(int32(binary.LittleEndian.Uint32(b[:n]))), nil
	case 0x12:
		return float64(int64(binary.LittleEndian.Uint64(b[:n]))), nil
	default:
		return 0, fmt.Errorf(`"ok" field has BSON type 0x%02x, want a number`, typ)
	}
}

// valueSize returns the encoded size of a BSON value of type typ at the
// start of b.
func valueSize(typ byte, b []byte) (int, error) {
	var n int

	switch typ {
	case 0x06, 0x0A, 0x7F, 0xFF: // undefined, null, max key, min key
		n = 0
	case 0x08: // boolean
		n = 1
	case 0x10: // int32
		n = 4
	case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
		n = 8
	case 0x07: // ObjectId
		n = 12
	case 0x13: // decimal128
		n = 16
	case 0x02, 0x0D, 0x0E: // string, JavaScript code, symbol
		if len(b) < 4 {
			return 0, errors.New("reply document is truncated")
		}

		n = 4 + int(int32(binary.LittleEndian.Uint32(b)))
	case 0x03, 0x04, 0x0F: // document, array, code with scope
		if len(b) < 4 {
			return 0, errors.New("reply document is truncated")
		}

		n = int(int32(binary.LittleEndian.Uint32(b)))
	case 0x05: // binary
		if len(b) < 4 {
			return 0, errors.New("reply document is truncated")
		}

		n = 4 + 1 + int(int32(binary.LittleEndian.Uint32(b)))
	case 0x0B: // regular expression: two C strings
		zeros := 0
		for i, c := range b {
			if c == 0 {
				zeros++
				if zeros == 2 {
					n = i + 1
					break
				}
			}
		}

		if zeros < 2 {
			return 0, errors.New("reply document is truncated")
		}
	case 0x0C: // DBPointer
		if len(b) < 4 {
			return 0, errors.New("reply document is truncated")
		}

		n = 4 + int(int32(binary.LittleEndian.Uint32(b))) + 12
	default:
		return 0, fmt.Errorf("reply document has unknown BSON type 0x%02x", typ)
	}

	if n < 0 || n > len(b) {
		return 0, errors.New("reply document is truncated")
	}

	return n, nil
}
