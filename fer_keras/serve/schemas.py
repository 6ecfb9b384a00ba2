"""The JSON shapes of the web API (they also document it at ``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelIdentity(BaseModel):
    name: str = Field(description="the model's name from metadata.json")
    version: str = Field(description="metadata 'version', else the first 12 hex digits of the weights' SHA-256")
    runtime: str = Field(description="keras or onnx")


class ModelDescription(ModelIdentity):
    class_names: list[str]
    input_size: list[int] = Field(description="[height, width] of the model input")
    color_mode: str


class FaceOut(BaseModel):
    box: list[int] = Field(description="[x, y, width, height] in pixels of the (EXIF-rotated) image")
    detected: bool = Field(description="false: no face was found and the whole image was classified")
    label: str = Field(description="the most probable class")
    probabilities: dict[str, float]


class ImageSize(BaseModel):
    width: int
    height: int


class PredictionOut(BaseModel):
    faces: list[FaceOut] = Field(description="largest face first")
    image: ImageSize
    model: ModelIdentity
    time_ms: float = Field(description="server time for decoding, face detection and classification")


class BatchItemOut(BaseModel):
    file: str = Field(description="the uploaded file name")
    faces: list[FaceOut] | None = None
    image: ImageSize | None = None
    model: ModelIdentity | None = None
    time_ms: float | None = None
    error: str | None = Field(None, description="set instead of the prediction when this file was unusable")


class HealthOut(BaseModel):
    status: str
    model: ModelDescription


class ErrorOut(BaseModel):
    error: str = Field(description="one line saying what was wrong with the request")
