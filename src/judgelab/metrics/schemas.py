"""Request bodies for metrics, shared by the API and the CLI."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class MetricCreate(BaseModel):
    # Unknown fields are refused so a typo ("desciption") is never silently dropped.
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = Field(default="", description="for llm_judge metrics, the judge prompt itself")
    type: str = Field(default="llm_judge", description="llm_judge or custom_code")
    eval_type: str = Field(
        default="binary_qualitative",
        description="binary_qualitative, binary_workflow_adherence, enum, numeric or continuous_qualitative",
    )
    enum_values: list[str] | None = None
    custom_code: str | None = None
    evaluation_trigger: str = Field(default="always", description="always, automatic or custom")
    trigger_type: str | None = Field(default=None, description="llm_judge or custom_code, for a custom trigger")
    evaluation_trigger_prompt: str | None = None
    evaluation_trigger_custom_code: str | None = None
    model: str | None = Field(default=None, description="provider/model overriding JUDGELAB_MODEL")
    agent: Id | None = None
    project: Id | None = None
    label_tolerance: Annotated[float, Field(ge=0, le=1e9)] | None = Field(
        default=None, description="how far a numeric verdict may be from its label and still agree (default: exact for "
                                  "numeric, 0.05 for continuous_qualitative)")


class MetricPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: str | None = None
    type: str | None = None
    eval_type: str | None = None
    enum_values: list[str] | None = None
    custom_code: str | None = None
    evaluation_trigger: str | None = None
    trigger_type: str | None = None
    evaluation_trigger_prompt: str | None = None
    evaluation_trigger_custom_code: str | None = None
    model: str | None = None
    agent: Id | None = None
    label_tolerance: Annotated[float, Field(ge=0, le=1e9)] | None = Field(
        default=None, description="how far a numeric verdict may be from its label and still agree (default: exact for "
                                  "numeric, 0.05 for continuous_qualitative)")
    change_note: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="why this version was made, kept in its history"
    )


class MetricRevert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[int, Field(ge=1, le=2**31 - 1)]
