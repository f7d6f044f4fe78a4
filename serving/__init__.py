"""TF Serving gRPC server (official tensorflow_serving.apis services) and roll-out client."""
