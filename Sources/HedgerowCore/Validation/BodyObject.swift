/// The object a write request sends, or DRF's error for a body that is not one.
package enum BodyObject {
    package static func require(_ body: JSONValue) throws(APIError) -> JSONObject {
        guard case .object(let object) = body else {
            throw APIError.invalid(nil, "Invalid data. Expected a dictionary, but got \(body.pythonTypeName).")
        }
        return object
    }
}
