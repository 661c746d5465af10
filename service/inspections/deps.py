"""The configuration of the inspection loop as a route dependency (`ConfigDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from rules.problems import InputError
from service.api.deps import ApiError, SettingsDep
from service.evaluation.runtime import RuntimeDep
from service.inspections.config import InspectionConfig, load_config


def get_config(settings: SettingsDep, runtime: RuntimeDep) -> InspectionConfig:
    try:
        return load_config(settings.policies_dir, runtime.library.model)
    except InputError as exc:  # a broken policies/inspections.yaml: the operator's to fix
        raise ApiError(
            f"policies/inspections.yaml has problems: {exc.problems[0]}",
            "检查配置 policies/inspections.yaml 存在问题",
            code="configuration_error",
            status_code=503,
        ) from None


ConfigDep = Annotated[InspectionConfig, Depends(get_config)]
