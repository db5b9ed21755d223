//! The request shapes, field by field, for the proto parsing layer (`proto`): names from the
//! REST references (https://ai.google.dev/api, Vertex's REST v1 reference) and the `google-genai`
//! SDK's `_to_mldev` / `_to_vertex` wire converters, which say which API has which field.

use super::proto::{Avail, EnumDesc, Field, Kind, Msg};
use Kind::{Bool, Bytes, Float, Int32, Int64, Str, Value};

const fn f(json: &'static str, kind: Kind) -> Field {
    Field { json, kind, repeated: false, avail: Avail::Both }
}
const fn rep(json: &'static str, kind: Kind) -> Field {
    Field { json, kind, repeated: true, avail: Avail::Both }
}
const fn vertex(field: Field) -> Field {
    Field { avail: Avail::Vertex, ..field }
}
const fn gemini(field: Field) -> Field {
    Field { avail: Avail::Gemini, ..field }
}

// ---- enums ------------------------------------------------------------------------------

pub(crate) static TYPE: EnumDesc = EnumDesc {
    name: "Type",
    values: &["TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"],
    any_case: true,
};
static HARM_CATEGORY: EnumDesc = EnumDesc {
    name: "HarmCategory",
    values: &[
        "HARM_CATEGORY_UNSPECIFIED",
        "HARM_CATEGORY_DEROGATORY",
        "HARM_CATEGORY_TOXICITY",
        "HARM_CATEGORY_VIOLENCE",
        "HARM_CATEGORY_SEXUAL",
        "HARM_CATEGORY_MEDICAL",
        "HARM_CATEGORY_DANGEROUS",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_CIVIC_INTEGRITY",
        "HARM_CATEGORY_IMAGE_HATE",
        "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT",
        "HARM_CATEGORY_IMAGE_HARASSMENT",
        "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_JAILBREAK",
    ],
    any_case: false,
};
static HARM_THRESHOLD: EnumDesc = EnumDesc {
    name: "SafetySetting.HarmBlockThreshold",
    values: &[
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
        "BLOCK_LOW_AND_ABOVE",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_NONE",
        "OFF",
    ],
    any_case: false,
};
static HARM_METHOD: EnumDesc = EnumDesc {
    name: "SafetySetting.HarmBlockMethod",
    values: &["HARM_BLOCK_METHOD_UNSPECIFIED", "SEVERITY", "PROBABILITY"],
    any_case: false,
};
static MODE: EnumDesc = EnumDesc {
    name: "FunctionCallingConfig.Mode",
    values: &["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"],
    any_case: false,
};
static MODALITY: EnumDesc = EnumDesc {
    name: "GenerationConfig.Modality",
    values: &["MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO"],
    any_case: false,
};
static MEDIA_RESOLUTION: EnumDesc = EnumDesc {
    name: "GenerationConfig.MediaResolution",
    values: &[
        "MEDIA_RESOLUTION_UNSPECIFIED",
        "MEDIA_RESOLUTION_LOW",
        "MEDIA_RESOLUTION_MEDIUM",
        "MEDIA_RESOLUTION_HIGH",
        "MEDIA_RESOLUTION_ULTRA_HIGH",
    ],
    any_case: false,
};
static THINKING_LEVEL: EnumDesc = EnumDesc {
    name: "ThinkingConfig.ThinkingLevel",
    values: &["THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"],
    any_case: false,
};
static BEHAVIOR: EnumDesc = EnumDesc {
    name: "FunctionDeclaration.Behavior",
    values: &["UNSPECIFIED", "BLOCKING", "NON_BLOCKING"],
    any_case: false,
};
static SCHEDULING: EnumDesc = EnumDesc {
    name: "FunctionResponse.Scheduling",
    values: &["SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT"],
    any_case: false,
};
static LANGUAGE: EnumDesc = EnumDesc {
    name: "ExecutableCode.Language",
    values: &["LANGUAGE_UNSPECIFIED", "PYTHON"],
    any_case: false,
};
static OUTCOME: EnumDesc = EnumDesc {
    name: "CodeExecutionResult.Outcome",
    values: &["OUTCOME_UNSPECIFIED", "OUTCOME_OK", "OUTCOME_FAILED", "OUTCOME_DEADLINE_EXCEEDED"],
    any_case: false,
};
static TASK_TYPE: EnumDesc = EnumDesc {
    name: "TaskType",
    values: &[
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    ],
    any_case: false,
};

// ---- messages ---------------------------------------------------------------------------

/// https://ai.google.dev/api/caching#Schema (Vertex: .../reference/rest/v1/Schema, which adds
/// `additionalProperties`, `$ref` and `$defs`). No `oneOf`, `allOf`, `const`, `$schema`,
/// `definitions`, `examples`, `patternProperties`, `exclusiveMinimum`…: those are unknown names.
pub(crate) static SCHEMA: Msg = Msg {
    name: "Schema",
    fields: &[
        f("type", Kind::Enum(&TYPE)),
        f("format", Str),
        f("title", Str),
        f("description", Str),
        f("nullable", Bool),
        rep("enum", Str),
        f("maxItems", Int64),
        f("minItems", Int64),
        f("properties", Kind::Map(&SCHEMA)),
        rep("required", Str),
        f("minProperties", Int64),
        f("maxProperties", Int64),
        f("minLength", Int64),
        f("maxLength", Int64),
        f("pattern", Str),
        f("example", Value),
        rep("anyOf", Kind::Msg(&SCHEMA)),
        rep("propertyOrdering", Str),
        f("default", Value),
        f("items", Kind::Msg(&SCHEMA)),
        f("minimum", Float),
        f("maximum", Float),
        vertex(f("additionalProperties", Value)),
        vertex(f("$ref", Str)),
        vertex(f("$defs", Kind::Map(&SCHEMA))),
    ],
};

static BLOB: Msg =
    Msg { name: "Blob", fields: &[f("mimeType", Str), f("data", Bytes), vertex(f("displayName", Str))] };
static FILE_DATA: Msg =
    Msg { name: "FileData", fields: &[f("mimeType", Str), f("fileUri", Str), vertex(f("displayName", Str))] };
static FUNCTION_CALL: Msg = Msg {
    name: "FunctionCall",
    fields: &[
        f("id", Str),
        f("name", Str),
        f("args", Kind::Struct),
        vertex(rep("partialArgs", Value)),
        vertex(f("willContinue", Bool)),
    ],
};
static FUNCTION_RESPONSE_PART: Msg = Msg {
    name: "FunctionResponsePart",
    fields: &[f("inlineData", Kind::Msg(&BLOB)), f("fileData", Kind::Msg(&FILE_DATA))],
};
static FUNCTION_RESPONSE: Msg = Msg {
    name: "FunctionResponse",
    fields: &[
        f("id", Str),
        f("name", Str),
        f("response", Kind::Struct),
        rep("parts", Kind::Msg(&FUNCTION_RESPONSE_PART)),
        f("willContinue", Bool),
        f("scheduling", Kind::Enum(&SCHEDULING)),
    ],
};
static EXECUTABLE_CODE: Msg = Msg {
    name: "ExecutableCode",
    fields: &[f("language", Kind::Enum(&LANGUAGE)), f("code", Str), f("id", Str)],
};
static CODE_EXECUTION_RESULT: Msg = Msg {
    name: "CodeExecutionResult",
    fields: &[f("outcome", Kind::Enum(&OUTCOME)), f("output", Str), f("id", Str)],
};
static VIDEO_METADATA: Msg =
    Msg { name: "VideoMetadata", fields: &[f("startOffset", Str), f("endOffset", Str), f("fps", Float)] };

/// https://ai.google.dev/api/caching#Part: `data` is a oneof of the first seven fields.
pub(crate) static PART: Msg = Msg {
    name: "Part",
    fields: &[
        f("text", Str),
        f("inlineData", Kind::Msg(&BLOB)),
        f("fileData", Kind::Msg(&FILE_DATA)),
        f("functionCall", Kind::Msg(&FUNCTION_CALL)),
        f("functionResponse", Kind::Msg(&FUNCTION_RESPONSE)),
        f("executableCode", Kind::Msg(&EXECUTABLE_CODE)),
        f("codeExecutionResult", Kind::Msg(&CODE_EXECUTION_RESULT)),
        f("toolCall", Value),
        f("toolResponse", Value),
        f("thought", Bool),
        f("thoughtSignature", Bytes),
        f("videoMetadata", Kind::Msg(&VIDEO_METADATA)),
        f("mediaResolution", Value),
        f("partMetadata", Kind::Struct),
    ],
};

/// The members of `Part`'s `data` oneof, in declaration order.
pub(crate) const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "toolCall",
    "toolResponse",
];

/// https://ai.google.dev/api/caching#Content
pub(crate) static CONTENT: Msg =
    Msg { name: "Content", fields: &[rep("parts", Kind::Msg(&PART)), f("role", Str)] };

/// https://ai.google.dev/api/caching#FunctionDeclaration
static FUNCTION_DECLARATION: Msg = Msg {
    name: "FunctionDeclaration",
    fields: &[
        f("name", Str),
        f("description", Str),
        f("behavior", Kind::Enum(&BEHAVIOR)),
        f("parameters", Kind::Msg(&SCHEMA)),
        f("parametersJsonSchema", Value),
        f("response", Kind::Msg(&SCHEMA)),
        f("responseJsonSchema", Value),
    ],
};

/// https://ai.google.dev/api/caching#Tool
static TOOL: Msg = Msg {
    name: "Tool",
    fields: &[
        rep("functionDeclarations", Kind::Msg(&FUNCTION_DECLARATION)),
        f("googleSearchRetrieval", Value),
        f("codeExecution", Value),
        f("googleSearch", Value),
        f("urlContext", Value),
        f("computerUse", Value),
        f("fileSearch", Value),
        f("googleMaps", Value),
        gemini(rep("mcpServers", Value)),
        vertex(f("retrieval", Value)),
        vertex(f("enterpriseWebSearch", Value)),
    ],
};

static FUNCTION_CALLING_CONFIG: Msg = Msg {
    name: "FunctionCallingConfig",
    fields: &[
        f("mode", Kind::Enum(&MODE)),
        rep("allowedFunctionNames", Str),
        vertex(f("streamFunctionCallArguments", Bool)),
    ],
};
/// https://ai.google.dev/api/caching#ToolConfig
static TOOL_CONFIG: Msg = Msg {
    name: "ToolConfig",
    fields: &[
        f("functionCallingConfig", Kind::Msg(&FUNCTION_CALLING_CONFIG)),
        f("retrievalConfig", Value),
        f("includeServerSideToolInvocations", Bool),
    ],
};

/// https://ai.google.dev/api/generate-content#safetysetting
static SAFETY_SETTING: Msg = Msg {
    name: "SafetySetting",
    fields: &[
        f("category", Kind::Enum(&HARM_CATEGORY)),
        f("threshold", Kind::Enum(&HARM_THRESHOLD)),
        vertex(f("method", Kind::Enum(&HARM_METHOD))),
    ],
};

static THINKING_CONFIG: Msg = Msg {
    name: "ThinkingConfig",
    fields: &[
        f("includeThoughts", Bool),
        f("thinkingBudget", Int32),
        f("thinkingLevel", Kind::Enum(&THINKING_LEVEL)),
    ],
};

/// https://ai.google.dev/api/generate-content#generationconfig
static GENERATION_CONFIG: Msg = Msg {
    name: "GenerationConfig",
    fields: &[
        rep("stopSequences", Str),
        f("responseMimeType", Str),
        f("responseSchema", Kind::Msg(&SCHEMA)),
        f("responseJsonSchema", Value),
        gemini(f("_responseJsonSchema", Value)),
        rep("responseModalities", Kind::Enum(&MODALITY)),
        f("candidateCount", Int32),
        f("maxOutputTokens", Int32),
        f("temperature", Float),
        f("topP", Float),
        f("topK", Int32),
        f("seed", Int32),
        f("presencePenalty", Float),
        f("frequencyPenalty", Float),
        f("responseLogprobs", Bool),
        f("logprobs", Int32),
        gemini(f("enableEnhancedCivicAnswers", Bool)),
        f("speechConfig", Value),
        f("thinkingConfig", Kind::Msg(&THINKING_CONFIG)),
        f("imageConfig", Value),
        f("mediaResolution", Kind::Enum(&MEDIA_RESOLUTION)),
        vertex(f("routingConfig", Value)),
        vertex(f("modelSelectionConfig", Value)),
        vertex(f("audioTimestamp", Bool)),
        vertex(f("enableAffectiveDialog", Bool)),
    ],
};

/// https://ai.google.dev/api/generate-content#request-body (Vertex adds `labels` and
/// `modelArmorConfig`).
pub(crate) static GENERATE_CONTENT_REQUEST: Msg = Msg {
    name: "GenerateContentRequest",
    fields: &[
        f("model", Str),
        rep("contents", Kind::Msg(&CONTENT)),
        rep("tools", Kind::Msg(&TOOL)),
        f("toolConfig", Kind::Msg(&TOOL_CONFIG)),
        rep("safetySettings", Kind::Msg(&SAFETY_SETTING)),
        f("systemInstruction", Kind::Msg(&CONTENT)),
        f("generationConfig", Kind::Msg(&GENERATION_CONFIG)),
        f("cachedContent", Str),
        gemini(f("serviceTier", Str)),
        vertex(f("labels", Kind::StrMap)),
        vertex(f("modelArmorConfig", Value)),
    ],
};

/// https://ai.google.dev/api/embeddings#request-body
pub(crate) static EMBED_CONTENT_REQUEST: Msg = Msg {
    name: "EmbedContentRequest",
    fields: &[
        f("model", Str),
        f("content", Kind::Msg(&CONTENT)),
        f("taskType", Kind::Enum(&TASK_TYPE)),
        f("title", Str),
        f("outputDimensionality", Int32),
    ],
};

/// https://ai.google.dev/api/embeddings#method:-models.batchembedcontents
pub(crate) static BATCH_EMBED_CONTENTS_REQUEST: Msg =
    Msg { name: "BatchEmbedContentsRequest", fields: &[rep("requests", Kind::Msg(&EMBED_CONTENT_REQUEST))] };

/// https://ai.google.dev/api/tokens#method:-models.counttokens (Vertex takes the
/// GenerateContentRequest fields at the top level instead of `generateContentRequest`).
pub(crate) static COUNT_TOKENS_REQUEST: Msg = Msg {
    name: "CountTokensRequest",
    fields: &[
        rep("contents", Kind::Msg(&CONTENT)),
        gemini(f("generateContentRequest", Kind::Msg(&GENERATE_CONTENT_REQUEST))),
        vertex(f("model", Str)),
        vertex(rep("instances", Value)),
        vertex(f("systemInstruction", Kind::Msg(&CONTENT))),
        vertex(rep("tools", Kind::Msg(&TOOL))),
        vertex(f("generationConfig", Kind::Msg(&GENERATION_CONFIG))),
    ],
};

/// Vertex `:predict` for text embeddings (instances are free-form `Value`s, checked in
/// `validate`).
pub(crate) static PREDICT_REQUEST: Msg =
    Msg { name: "PredictRequest", fields: &[rep("instances", Value), f("parameters", Value)] };
