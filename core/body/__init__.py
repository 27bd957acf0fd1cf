"""Optional body models driven by our motions (SMPL family, loaded from .npz files only)."""

from core.body.smpl import (
                            SmplError,
                            SmplModel,
                            body_vertices,
                            fit_betas,
                            pose_from_joints,
                            posed_joints,
                            rest_joints,
                            skin,
)

__all__ = ["SmplError", "SmplModel", "body_vertices", "fit_betas", "pose_from_joints", "posed_joints",
           "rest_joints", "skin"]
