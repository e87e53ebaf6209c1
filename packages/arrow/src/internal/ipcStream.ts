/**
 * A structural check of an Arrow IPC stream, run before `tableFromIPC` reads it.
 *
 * `tableFromIPC` is lenient: it returns an empty table for zero bytes or a run of zeros (a legacy end-of-stream
 * marker), and a stream cut at a message boundary reads back as a table with fewer rows, without any error. A cache
 * must never answer with such a table, so the stored bytes are walked first, message header by message header (no
 * body is read or copied), and refused unless they are exactly one complete stream as the codec writes it.
 *
 * Framing (Arrow columnar format, "Encapsulated message format", metadata version ≥ 0.15):
 * `<0xFFFFFFFF> <int32 metadata length> <flatbuffer Message, padded to 8> <body: bodyLength bytes>`, repeated,
 * then the end-of-stream marker `<0xFFFFFFFF> <0x00000000>`.
 *
 * @since 0.1.0
 */
import { Message, MessageHeader } from "apache-arrow"

/** The continuation marker that starts every message of a stream written with metadata version ≥ 0.15. */
const continuation = -1

/**
 * @since 0.1.0
 */
export interface StreamShape {
  /** messages before the end-of-stream marker: one schema, then dictionary and record batches */
  readonly messages: number
  readonly recordBatches: number
}

/**
 * What is wrong with `bytes` as one complete Arrow IPC stream, or its shape when nothing is.
 *
 * @since 0.1.0
 */
export const check = (bytes: Uint8Array): StreamShape | string => {
  const length = bytes.byteLength
  const view = new DataView(bytes.buffer, bytes.byteOffset, length)
  let offset = 0
  let messages = 0
  let recordBatches = 0
  for (;;) {
    if (offset + 8 > length) {
      return offset === 0 && length === 0
        ? "the payload is empty"
        : `the stream ends at byte ${offset} of ${length} without its end-of-stream marker (truncated)`
    }
    if (view.getInt32(offset, true) !== continuation) {
      return `byte ${offset} does not start an IPC message (no continuation marker 0xFFFFFFFF)`
    }
    const metadataLength = view.getInt32(offset + 4, true)
    if (metadataLength === 0) {
      if (messages === 0) return "the stream holds no schema"
      const trailing = length - offset - 8
      return trailing === 0 ? { messages, recordBatches } : `${trailing} bytes follow the end-of-stream marker`
    }
    const bodyStart = offset + 8 + metadataLength
    if (metadataLength < 0 || bodyStart > length) {
      return `the metadata of message ${messages} (${metadataLength} bytes at byte ${offset}) runs past the end`
    }
    // reads the flatbuffer header only; the header's own content (schema, batch layout) is decoded lazily
    const message = Message.decode(bytes.subarray(offset + 8, bodyStart))
    const headerType = message.headerType
    if (messages === 0) {
      if (headerType !== MessageHeader.Schema) return "the stream does not start with a schema message"
    } else if (headerType === MessageHeader.RecordBatch) {
      recordBatches++
    } else if (headerType !== MessageHeader.DictionaryBatch) {
      return `message ${messages} is neither a record batch nor a dictionary batch (header type ${headerType})`
    }
    const bodyLength = message.bodyLength
    if (!Number.isSafeInteger(bodyLength) || bodyLength < 0 || bodyStart + bodyLength > length) {
      return `the body of message ${messages} (${bodyLength} bytes at byte ${bodyStart}) runs past the end`
    }
    offset = bodyStart + bodyLength
    messages++
  }
}
