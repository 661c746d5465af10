"""Shapes of the policy library as the API shows it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.violations.schemas import Severity, TextRead

ParamValue = int | float | bool | str


class ManualRead(BaseModel):
    id: str
    title: TextRead
    source: str
    applies: bool = Field(description="Whether the company applies this manual (its rules are in force).")
    truncated: bool = Field(description="Whether the source text of the manual was incomplete.")
    clauses: int
    checkable_clauses: int


class ParameterRead(BaseModel):
    id: str
    type: str = Field(description="int, decimal (a string, exact), days, ratio, bool, string or period.")
    value: ParamValue = Field(description="The value in force (the company's override, else the default).")
    default: ParamValue
    overridden: bool
    unit: TextRead | None
    label: TextRead
    clauses: list[str]


class CompanyRead(BaseModel):
    name: TextRead
    timezone: str
    manuals: list[str] = Field(description="The manuals the company applies.")


class PoliciesRead(BaseModel):
    version: str = Field(description="Digest of every policy file and the parameter values in force.")
    company: CompanyRead
    manuals: list[ManualRead]
    parameters: list[ParameterRead]
    rules_in_force: int


class ClauseRead(BaseModel):
    id: str
    manual: str
    section: TextRead
    title: TextRead
    text: TextRead
    category: str
    owner: TextRead
    checkable: bool = Field(description="Whether a rule can check it from records.")
    why_not_checkable: TextRead | None
    rules: list[str] = Field(description="The rules citing it.")


class RuleRead(BaseModel):
    id: str
    title: TextRead
    description: TextRead | None
    clauses: list[str]
    record_type: str
    severity: Severity = Field(description="The highest severity the rule gives.")
    responsible: str = Field(description="The record field naming who answers for a violation.")
    rectify_days: int
    parameters: list[str] = Field(description="The parameters the rule's condition and message use.")
    in_force: bool = Field(description="Whether it cites a clause of a manual the company applies.")
