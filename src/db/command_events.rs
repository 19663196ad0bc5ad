//! Every MongoDB command's outcome, from the driver's command monitoring:
//! failures by command name (a server refusing writes, a lost connection
//! mid-command, a transaction conflict) and each command's duration.

use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;

use crate::observability::series;

/// The handler of `ClientOptions::command_event_handler`.
pub fn recorder() -> EventHandler<CommandEvent> {
    EventHandler::callback(|event| match event {
        CommandEvent::Succeeded(done) => {
            ::metrics::histogram!(series::DB_COMMAND_DURATION, "command" => done.command_name)
                .record(done.duration.as_secs_f64());
        }
        CommandEvent::Failed(failed) => {
            ::metrics::histogram!(series::DB_COMMAND_DURATION, "command" => failed.command_name.clone())
                .record(failed.duration.as_secs_f64());
            ::metrics::counter!(series::DB_COMMAND_ERRORS, "command" => failed.command_name).increment(1);
        }
        // A command starting is no outcome yet (and the enum is non-exhaustive).
        _ => {}
    })
}
